/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-http-parser.c: gyre-http's request parser and chunked decoder on
 * their own, with no loop and no socket: the API issue 7 fuzzes.
 *
 * The parser source is compiled into this file rather than linked, so the
 * test list needs nothing from examples/ but the source.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#include "../examples/http/parser.c"

static int parse_str(const char *s, http_request *req)
{
    return http_parse_request(s, strlen(s), req);
}

static int span_eq(const char *p, uint32_t len, const char *s)
{
    return strlen(s) == len && memcmp(p, s, len) == 0;
}

void test_http_parser_basic(void)
{
    const char *s = "POST /a/b?c=d HTTP/1.1\r\n"
                    "Host: example\r\n"
                    "Content-Length:  5 \r\n"
                    "X-Empty:\r\n"
                    "\r\n"
                    "hello";
    http_request req;
    uint32_t len;
    const char *v;

    ASSERT_EQ(parse_str(s, &req), (int)(strlen(s) - 5));
    ASSERT_EQ(req.method, HTTP_POST);
    ASSERT_TRUE(span_eq(req.method_name, req.method_len, "POST"));
    ASSERT_TRUE(span_eq(req.target, req.target_len, "/a/b?c=d"));
    ASSERT_EQ(req.version_minor, 1);
    ASSERT_EQ(req.n_headers, 3);
    ASSERT_TRUE(req.has_content_length);
    ASSERT_EQ(req.content_length, 5);
    ASSERT_EQ(req.chunked, 0);
    ASSERT_EQ(req.keep_alive, 1);
    v = http_header_get(&req, "content-LENGTH", &len);
    ASSERT_TRUE(v && span_eq(v, len, "5")); /* surrounding whitespace trimmed */
    v = http_header_get(&req, "x-empty", &len);
    ASSERT_TRUE(v && len == 0);
    ASSERT_TRUE(http_header_get(&req, "missing", &len) == NULL);

    ASSERT_EQ(parse_str("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", &req), 31);
    ASSERT_EQ(req.method, HTTP_OTHER);
    ASSERT_EQ(parse_str("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req), 31);
    ASSERT_EQ(req.method, HTTP_OPTIONS);
    ASSERT_EQ(parse_str("GET / HTTP/1.0\r\n\r\n", &req), 18); /* 1.0 needs no Host */
    ASSERT_EQ(req.version_minor, 0);
    ASSERT_EQ(req.keep_alive, 0);
    /* A later 1.x is answered as 1.1. */
    ASSERT_EQ(parse_str("GET / HTTP/1.7\r\nHost: h\r\n\r\n", &req), 27);
    ASSERT_EQ(req.version_minor, 1);
    ASSERT_STREQ(http_reason(404), "Not Found");
}

/* Requests that must give the same result whole and at every split. */
static const char *const split_cases[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nAccept: */*\r\n\r\nGET /y HTTP/1.1\r\n",
    "POST /p HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
    "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
    "GET / HTTP/1.1\nHost: a\r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "GET / HTTP/1.1\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "G@T / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n",
};

void test_http_parser_split(void)
{
    size_t c;

    for (c = 0; c < sizeof split_cases / sizeof split_cases[0]; c++) {
        const char *s = split_cases[c];
        size_t n = strlen(s), k;
        http_request whole, part;
        int rc = http_parse_request(s, n, &whole), r;

        ASSERT_NE(rc, HTTP_INCOMPLETE);
        for (k = 0; k < n; k++) {
            /* Each prefix in its own exact-size copy, so that a read past
             * len shows up under the sanitizers. */
            char *p = malloc(k ? k : 1);

            ASSERT_TRUE(p != NULL);
            memcpy(p, s, k);
            r = http_parse_request(p, k, &part);
            free(p);
            if (rc > 0 && (size_t)rc > k) {
                ASSERT_EQ(r, HTTP_INCOMPLETE);
            } else if (rc > 0) {
                /* The head is complete in this prefix: the same parse. */
                ASSERT_EQ(r, rc);
                ASSERT_EQ(part.n_headers, whole.n_headers);
                ASSERT_EQ(part.method, whole.method);
                ASSERT_EQ(part.target_len, whole.target_len);
                ASSERT_EQ(part.keep_alive, whole.keep_alive);
                ASSERT_EQ(part.content_length * part.has_content_length,
                          whole.content_length * whole.has_content_length);
            } else {
                /* An error shows only once its bytes are there. */
                ASSERT_TRUE(r == HTTP_INCOMPLETE || r == rc);
            }
        }
    }
}

void test_http_parser_errors(void)
{
    static const struct {
        const char *req;
        int result;
    } cases[] = {
        {"GARBAGE\r\n\r\n", -HTTP_E400},
        {" GET / HTTP/1.1\r\n\r\n", -HTTP_E400},
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET noslash HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400}, /* not http(s) */
        {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\n\r\n", -HTTP_E400},                       /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -HTTP_E400}, /* two */
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", -HTTP_E400},           /* space before colon */
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", -HTTP_E400}, /* obs-fold */
        {"GET / HTTP/1.1\nHost: a\n\n", -HTTP_E400},                  /* bare LF */
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", -HTTP_E400}, /* control byte */
        {"GET / HTTP/1.1\r\nHost: a\r\n\rX", -HTTP_E400},
        {"GET / HTTP/x.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / FTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", -HTTP_E505},
        {"GET / HTTP/0.9\r\n\r\n", -HTTP_E505},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         -HTTP_E400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -HTTP_E400},
        /* RFC 9112 6.3: chunked not last is 400, even for a coding unknown. */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -HTTP_E501},
        /* Equal duplicates are one length. */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 66},
    };
    http_request req;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse_str(cases[i].req, &req);

        if (rc != cases[i].result)
            test_fail(__FILE__, __LINE__, "case %zu (%s): got %d, want %d", i, cases[i].req, rc,
                      cases[i].result);
    }
}

static size_t build_headers(char *buf, size_t cap, int n_headers, size_t target_len, size_t pad_len)
{
    size_t n = 0;
    int i;

    n += (size_t)snprintf(buf + n, cap - n, "GET /");
    for (i = 1; i < (int)target_len; i++)
        buf[n++] = 'a';
    n += (size_t)snprintf(buf + n, cap - n, " HTTP/1.1\r\nHost: h\r\n");
    for (i = 1; i < n_headers; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-H%d: v\r\n", i);
    if (pad_len) {
        n += (size_t)snprintf(buf + n, cap - n, "X-Pad: ");
        memset(buf + n, 'p', pad_len);
        n += pad_len;
        n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    return n;
}

void test_http_parser_limits(void)
{
    static char buf[3 * HTTP_MAX_HEAD];
    http_request req;
    size_t n;

    n = build_headers(buf, sizeof buf, HTTP_MAX_HEADERS, 1, 0);
    ASSERT_EQ(http_parse_request(buf, n, &req), (int)n);
    ASSERT_EQ(req.n_headers, HTTP_MAX_HEADERS);
    n = build_headers(buf, sizeof buf, HTTP_MAX_HEADERS + 1, 1, 0);
    ASSERT_EQ(http_parse_request(buf, n, &req), -HTTP_E431);

    n = build_headers(buf, sizeof buf, 1, HTTP_MAX_TARGET, 0);
    ASSERT_EQ(http_parse_request(buf, n, &req), (int)n);
    ASSERT_EQ(req.target_len, HTTP_MAX_TARGET);
    n = build_headers(buf, sizeof buf, 1, HTTP_MAX_TARGET + 1, 0);
    ASSERT_EQ(http_parse_request(buf, n, &req), -HTTP_E414);
    /* Too long is known before the target ends. */
    ASSERT_EQ(http_parse_request(buf, HTTP_MAX_TARGET + 10, &req), -HTTP_E414);

    /* A head that ends exactly at the limit passes; one byte more is 431,
     * whether or not its end has arrived. */
    n = build_headers(buf, sizeof buf, 1, 1, 0);
    n = build_headers(buf, sizeof buf, 1, 1, HTTP_MAX_HEAD - n - 9);
    ASSERT_EQ(n, HTTP_MAX_HEAD);
    ASSERT_EQ(http_parse_request(buf, n, &req), (int)n);
    n = build_headers(buf, sizeof buf, 1, 1, HTTP_MAX_HEAD);
    ASSERT_EQ(http_parse_request(buf, n, &req), -HTTP_E431);
    ASSERT_EQ(http_parse_request(buf, HTTP_MAX_HEAD, &req), -HTTP_E431);
    ASSERT_EQ(http_parse_request(buf, HTTP_MAX_HEAD - 1, &req), HTTP_INCOMPLETE);
}

void test_http_parser_connection(void)
{
    static const struct {
        const char *req;
        int keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: te,  keep-alive \r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n", 0},
    };
    http_request req;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_GT(parse_str(cases[i].req, &req), 0);
        if (req.keep_alive != cases[i].keep_alive)
            test_fail(__FILE__, __LINE__, "case %zu: keep_alive %d", i, req.keep_alive);
    }
    ASSERT_GT(parse_str("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                        "Content-Length: 1\r\n\r\n",
                        &req),
              0);
    ASSERT_EQ(req.expect_continue, 1);
}

/* Decodes s[0..n) fed in two pieces split at k; returns the bytes consumed
 * (where the next request starts), or a negative error, and the data in
 * out. */
static int64_t chunked_decode_split(const char *s, size_t n, size_t k, char *out, size_t *out_len)
{
    http_chunked c;
    size_t piece[2] = {k, n - k}, base = 0, off, len, used;
    int64_t r;
    int p, done = 0;

    http_chunked_init(&c);
    *out_len = 0;
    for (p = 0; p < 2 && !done; p++) {
        used = 0;
        while (used < piece[p] && !done) {
            r = http_chunked_feed(&c, s + base + used, piece[p] - used, &done, &off, &len);
            if (r < 0)
                return r;
            ASSERT_TRUE(r > 0 || done);
            memcpy(out + *out_len, s + base + used + off, len);
            *out_len += len;
            used += (size_t)r;
        }
        base += used;
    }
    return done ? (int64_t)base : HTTP_INCOMPLETE;
}

void test_http_parser_chunked(void)
{
    static const char ok[] = "5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n"
                             "0\r\nTrailer: x\r\n\r\nNEXT";
    static const char *const bad[] = {
        "x\r\n",                 /* not hex */
        "\r\n",                  /* no digits */
        "5\r\nhelloX\r\n",       /* data not followed by CRLF */
        "5\nhello\r\n",          /* bare LF */
        "1000000000000000\r\n",  /* 16 digits */
        "0\r\nTrailer: x\n\r\n", /* bare LF in a trailer */
    };
    char out[64];
    size_t out_len, n = strlen(ok), k, i;
    int64_t r;

    for (k = 0; k <= n; k++) {
        r = chunked_decode_split(ok, n, k, out, &out_len);
        ASSERT_EQ(r, (int64_t)(n - 4)); /* stops before "NEXT" */
        ASSERT_EQ(out_len, 16);
        ASSERT_TRUE(memcmp(out, "hello 0123456789", 16) == 0);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (k = 0; k <= strlen(bad[i]); k++) {
            r = chunked_decode_split(bad[i], strlen(bad[i]), k, out, &out_len);
            if (r != -HTTP_E400)
                test_fail(__FILE__, __LINE__, "bad case %zu split %zu: got %lld", i, k,
                          (long long)r);
        }
    }
}

/* RFC 9112/9110 points of issue 14: targets, Host, framing, Expect, and
 * the per-request reset of every field. */
void test_http_parser_rfc(void)
{
    static const struct {
        const char *req;
        int result; /* > 0: accepted (the head's length is checked apart) */
    } cases[] = {
        /* Host: one, valid, required on 1.1 (RFC 9112 3.2). */
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 1}, /* empty is allowed */
        /* absolute-form (RFC 9112 3.2.2); Host is still required on 1.1. */
        {"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n", 1},
        {"GET HTTPS://a:443?q HTTP/1.1\r\nHost: b\r\n\r\n", 1},
        {"GET http://a/x HTTP/1.1\r\n\r\n", -HTTP_E400},
        {"GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n", -HTTP_E400},
        {"GET http://u@a/x HTTP/1.1\r\nHost: b\r\n\r\n", -HTTP_E400},
        {"GET http:/a/x HTTP/1.1\r\nHost: b\r\n\r\n", -HTTP_E400},
        {"GET mailto:a HTTP/1.1\r\nHost: b\r\n\r\n", -HTTP_E400},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400}, /* authority-form */
        /* Transfer-Encoding (RFC 9112 6.1, 6.3, 7). */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         -HTTP_E501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 1},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", 1},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", -HTTP_E400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 01\r\n\r\n", 1},
        /* Bare CR in the request line and in a value. */
        {"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\rHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nX: a\rb\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nX\t: a\r\nHost: a\r\n\r\n", -HTTP_E400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", -HTTP_E400},
        /* Expect (RFC 9110 10.1.1). */
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", -HTTP_E417},
        {"POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", 1},
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", 1},
    };
    const char *two = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    http_request req;
    size_t i;
    int rc;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = parse_str(cases[i].req, &req);
        if (cases[i].result > 0 ? rc != (int)strlen(cases[i].req) : rc != cases[i].result)
            test_fail(__FILE__, __LINE__, "case %zu (%s): got %d, want %d", i, cases[i].req, rc,
                      cases[i].result);
    }

    /* absolute-form: the authority replaces Host, the path is what follows. */
    ASSERT_GT(parse_str("GET http://Example.com:8080/a/b?c HTTP/1.1\r\nHost: other\r\n\r\n", &req),
              0);
    ASSERT_TRUE(span_eq(req.authority, req.authority_len, "Example.com:8080"));
    ASSERT_TRUE(span_eq(req.path, req.path_len, "/a/b?c"));
    ASSERT_GT(parse_str("GET http://h HTTP/1.1\r\nHost: other\r\n\r\n", &req), 0);
    ASSERT_TRUE(span_eq(req.authority, req.authority_len, "h"));
    ASSERT_EQ(req.path_len, 0);
    ASSERT_GT(parse_str("GET /p HTTP/1.1\r\nHost: h:1\r\n\r\n", &req), 0);
    ASSERT_TRUE(span_eq(req.authority, req.authority_len, "h:1"));
    ASSERT_TRUE(span_eq(req.path, req.path_len, "/p"));
    ASSERT_GT(parse_str("GET /p HTTP/1.0\r\n\r\n", &req), 0);
    ASSERT_EQ(req.authority_len, 0);

    /* Expect on HTTP/1.0 is ignored. */
    ASSERT_GT(
        parse_str("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &req), 0);
    ASSERT_EQ(req.expect_continue, 0);
    ASSERT_EQ(req.content_length, 1);

    /* One http_request reused for a bodiless request after one with a
     * length: nothing of the first is left (the server's 100 Continue for a
     * bodiless request came from this). */
    ASSERT_GT(parse_str(two, &req), 0);
    ASSERT_EQ(req.content_length, 5);
    ASSERT_GT(parse_str("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &req), 0);
    ASSERT_EQ(req.has_content_length, 0);
    ASSERT_EQ(req.content_length, 0);
    ASSERT_EQ(req.chunked, 0);
    ASSERT_EQ(req.expect_continue, 1);
}

/* Chunk sizes: leading zeros are fine, values at or past 2^60 are not, and
 * nothing overflows. */
void test_http_parser_chunk_sizes(void)
{
    static const struct {
        const char *body;
        int64_t result; /* bytes consumed, or -HTTP_E400 */
    } cases[] = {
        {"00000000000000000000005\r\nhello\r\n0\r\n\r\n", 37},
        {"0FFFFFFFFFFFFFFF\r\n", 18}, /* 2^60 - 1: accepted, the data is awaited */
        {"1000000000000000\r\n", -HTTP_E400},
        {"FFFFFFFFFFFFFFFFFFFF\r\n", -HTTP_E400},
        {"5\r\nhello\r\n0\r\n\r", 14}, /* incomplete, all consumed */
        {"5\r\nhello\r\n-1\r\n", -HTTP_E400},
        {"5\r\nhello\r\n0x1\r\n", -HTTP_E400},
    };
    size_t i, off, len, used;
    http_chunked c;
    int64_t r = 0;
    int done;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].body);

        http_chunked_init(&c);
        used = 0;
        done = 0;
        while (used < n && !done) {
            r = http_chunked_feed(&c, cases[i].body + used, n - used, &done, &off, &len);
            if (r < 0)
                break;
            used += (size_t)r;
        }
        if ((r < 0 ? r : (int64_t)used) != cases[i].result)
            test_fail(__FILE__, __LINE__, "case %zu: got %lld, want %lld", i,
                      (long long)(r < 0 ? r : (int64_t)used), (long long)cases[i].result);
    }
}
