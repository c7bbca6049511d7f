/* test-list-http.h: the examples' tests (gyre-http's parser on its own,
 * gyre-http and gyre-cp run as child processes). Included by test-list.h;
 * same format. The servers inherit GYRE_BACKEND, so each runs on the
 * backend under test. */
TEST_ENTRY(http_parser_basic, "http")
TEST_ENTRY(http_parser_split, "http")
TEST_ENTRY(http_parser_errors, "http")
TEST_ENTRY(http_parser_limits, "http")
TEST_ENTRY(http_parser_connection, "http")
TEST_ENTRY(http_parser_chunked, "http")
TEST_ENTRY(http_parser_rfc, "http")
TEST_ENTRY(http_parser_chunk_sizes, "http")
TEST_ENTRY(http_get_root, "http")
TEST_ENTRY(http_pipelined, "http")
TEST_ENTRY(http_keepalive_close, "http")
TEST_ENTRY(http_malformed, "http")
TEST_ENTRY(http_bodies, "http")
TEST_ENTRY(http_root_file, "http")
TEST_ENTRY(http_root_escape, "http")
TEST_ENTRY(http_cp_tree, "http;files")
