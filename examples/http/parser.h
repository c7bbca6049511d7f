/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* parser.h: gyre-http's HTTP/1.1 request parser, a pure function of the
 * bytes it is given.
 *
 * It knows nothing of sockets or of the loop, allocates nothing, keeps no
 * state between calls and never reads past `len`, so it can be fed by any
 * server, unit-tested on its own and fuzzed with libFuzzer as it is
 * (LLVMFuzzerTestOneInput calls http_parse_request() and
 * http_chunked_feed() on the input).
 *
 * Requests: http_parse_request() is called on everything received so far
 * that is not yet consumed. It returns HTTP_INCOMPLETE until the head (the
 * request line and the headers, up to the empty line) is all there, and
 * then the length of the head; the request's pointers point into the
 * caller's buffer. Calling it again on more bytes gives the same answer as
 * calling it once on all of them: a request split anywhere parses the same.
 * Pipelining is the caller consuming the head and its body and calling
 * again on the rest.
 *
 * Strictness: lines end with CRLF (a bare LF or CR is 400); header names are
 * tokens with no space before the colon; obsolete line folding, a
 * Content-Length that is not all digits, two different Content-Lengths, both
 * Content-Length and Transfer-Encoding, and an HTTP/1.1 request without
 * exactly one syntactically valid Host are 400 (RFC 9112 sections 2.2, 3.2,
 * 5, 6.3 and RFC 9110 7.2), because a lenient parser in front of another is
 * how requests get smuggled. Transfer-Encoding other than "chunked" alone is
 * 501, a version other than HTTP/1.0 or 1.1 is 505, an Expect other than
 * 100-continue on HTTP/1.1 is 417 (an expectation on HTTP/1.0 is ignored,
 * RFC 9110 10.1.1).
 *
 * Targets: origin-form ("/path?query"), "*" for OPTIONS, and absolute-form
 * ("http://authority/path?query", RFC 9112 3.2.2), whose authority replaces
 * Host: req->path is the origin-form part in every case.
 *
 * Chunked bodies: http_chunked_feed() decodes them incrementally (state in
 * a caller-owned http_chunked), reporting where the data bytes are, so a
 * server can discard or keep them without copying.
 */
#ifndef GYRE_HTTP_PARSER_H
#define GYRE_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* Limits: a head longer than HTTP_MAX_HEAD or with more than
 * HTTP_MAX_HEADERS header lines is 431; a request target longer than
 * HTTP_MAX_TARGET is 414. */
#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_TARGET 2048

/* http_parse_request() results below 0. Each names the status the server
 * answers with: -HTTP_E400 is -400, and so on. */
#define HTTP_INCOMPLETE 0
#define HTTP_E400 400 /* malformed */
#define HTTP_E414 414 /* request target too long */
#define HTTP_E417 417 /* an expectation other than 100-continue */
#define HTTP_E431 431 /* head too long or too many headers */
#define HTTP_E501 501 /* transfer coding not implemented */
#define HTTP_E505 505 /* HTTP version not supported */

typedef enum http_method {
    HTTP_OTHER = 0, /* a valid token that is none of the below (the server says 501) */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_TRACE,
    HTTP_CONNECT,
    HTTP_PATCH,
} http_method;

typedef struct http_header {
    const char *name, *value; /* not NUL-terminated; value without surrounding whitespace */
    uint32_t name_len, value_len;
} http_header;

typedef struct http_request {
    http_method method;
    const char *method_name; /* as sent */
    uint32_t method_len;
    const char *target; /* the request target as sent */
    uint32_t target_len;
    /* The origin-form part of the target: "/..." or "*"; for absolute-form
     * what follows the authority, which may be empty (meaning "/") or start
     * with '?'. */
    const char *path;
    uint32_t path_len;
    /* The authority: the absolute-form target's if it has one, else Host's
     * value (empty if neither). */
    const char *authority;
    uint32_t authority_len;
    int version_minor; /* 0 or 1 (HTTP/1.x) */
    uint32_t n_headers;
    http_header headers[HTTP_MAX_HEADERS];
    uint64_t content_length; /* 0 unless has_content_length */
    uint8_t has_content_length;
    uint8_t chunked;         /* Transfer-Encoding: chunked */
    uint8_t keep_alive;      /* the connection stays open after the response */
    uint8_t expect_continue; /* "Expect: 100-continue" on HTTP/1.1 */
} http_request;

/* Parses the head of the request at the start of buf[0..len). Returns the
 * head's length (> 0, the empty line included) with *req filled;
 * HTTP_INCOMPLETE (0) if more bytes are needed; or -HTTP_E4xx/-HTTP_E5xx.
 * *req is undefined unless the result is > 0. Pointers in *req point into
 * buf. Never reads beyond len; pure and reentrant. */
int http_parse_request(const char *buf, size_t len, http_request *req);

/* The value of the first header called `name` (case-insensitive), or NULL;
 * *len gets its length. */
const char *http_header_get(const http_request *req, const char *name, uint32_t *len);

/* Incremental chunked-body decoder. Zero it (or http_chunked_init) before
 * the body's first byte. */
typedef struct http_chunked {
    uint64_t left;   /* data bytes left in the current chunk */
    uint32_t state;  /* private */
    uint32_t count;  /* private: digits or line bytes seen, against the limits */
    uint32_t digits; /* private */
} http_chunked;

void http_chunked_init(http_chunked *c);

/* Decodes from buf[0..len). Returns the number of bytes consumed (<= len),
 * which is all of len unless the body ended inside buf: the rest then
 * belongs to the next request. Sets *done to 1 when the body (trailers
 * included) is complete, and reports the chunk data found in this call as
 * at most one run: *data_off and *data_len (0 if none). A call returns after
 * each data run, so call it again on the remaining bytes until it has
 * consumed all or *done. Returns -HTTP_E400 on a malformed body (a size that
 * is not hex, too many digits, a missing CRLF, an over-long extension or
 * trailer line). Chunk sizes are bounded below 2^60 whatever the leading
 * zeros, so no size overflows. */
int64_t http_chunked_feed(http_chunked *c, const char *buf, size_t len, int *done, size_t *data_off,
                          size_t *data_len);

/* The reason phrase for a status code ("OK", "Not Found", ...). */
const char *http_reason(int status);

#endif
