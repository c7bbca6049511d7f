/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fuzz-http.c: libFuzzer target for gyre-http's request parser
 * (examples/http/parser.h), a pure function of its bytes.
 *
 * Each input is parsed whole and as a prefix cut at a point the input picks,
 * each from its own exact-size heap copy so that a read past `len` is an ASan
 * report. Checked, with abort() on violation:
 *  - the prefix agrees with the whole parse, as parser.h promises ("a request
 *    split anywhere parses the same"): incomplete until the head is there,
 *    then the same head length and the same fields at the same offsets; an
 *    error shows only once its bytes are there;
 *  - every pointer in the request lies inside the head it came from, and the
 *    counts respect the HTTP_MAX_* limits;
 *  - http_header_get() finds each header's first occurrence;
 *  - the chunked decoder, fed the input whole and in two pieces, consumes
 *    the same bytes, reports the same data and fails the same way, and its
 *    data runs lie inside what it was given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(e)                                                                                   \
    do {                                                                                           \
        if (!(e)) {                                                                                \
            fprintf(stderr, "fuzz-http: %s:%d: check failed: %s\n", __FILE__, __LINE__, #e);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);

    CHECK(p != NULL);
    if (n > 0)
        memcpy(p, data, n);
    return p;
}

/* p[0..len) lies inside buf[0..n). */
static int inside(const char *buf, size_t n, const char *p, size_t len)
{
    return p >= buf && (size_t)(p - buf) <= n && len <= n - (size_t)(p - buf);
}

static void check_request(const char *buf, size_t head, const http_request *r)
{
    uint32_t i, j, len;

    CHECK(r->n_headers <= HTTP_MAX_HEADERS);
    CHECK(r->method_len > 0 && inside(buf, head, r->method_name, r->method_len));
    CHECK(r->target_len > 0 && r->target_len <= HTTP_MAX_TARGET);
    CHECK(inside(buf, head, r->target, r->target_len));
    /* The path is the target's tail; the authority lies in the target or
     * is Host's value (NULL only when empty). */
    CHECK(inside(r->target, r->target_len, r->path, r->path_len));
    CHECK(r->path - r->target + r->path_len == r->target_len);
    CHECK(r->authority_len == 0 || inside(buf, head, r->authority, r->authority_len));
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    CHECK(!(r->has_content_length && r->chunked));
    CHECK(r->has_content_length || r->content_length == 0);
    CHECK(!r->expect_continue || r->version_minor == 1);
    for (i = 0; i < r->n_headers; i++) {
        const http_header *h = &r->headers[i];
        char name[HTTP_MAX_HEAD + 1];
        const char *v;

        CHECK(h->name_len > 0 && inside(buf, head, h->name, h->name_len));
        CHECK(inside(buf, head, h->value, h->value_len));
        CHECK(h->name_len <= HTTP_MAX_HEAD);
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        if (memchr(name, '\0', h->name_len) != NULL)
            continue; /* a name with a NUL cannot be asked for by C string */
        v = http_header_get(r, name, &len);
        CHECK(v != NULL);
        /* The first header of that name, case-insensitively. */
        for (j = 0; j < r->n_headers; j++)
            if (r->headers[j].name_len == h->name_len &&
                strncasecmp(r->headers[j].name, name, h->name_len) == 0)
                break;
        CHECK(j <= i);
        CHECK(v == r->headers[j].value && len == r->headers[j].value_len);
    }
}

/* The same request, read from two different copies of the same bytes. */
static void check_same(const char *a, const http_request *ra, const char *b, const http_request *rb)
{
    uint32_t i;

    CHECK(ra->method == rb->method);
    CHECK(ra->method_len == rb->method_len && ra->method_name - a == rb->method_name - b);
    CHECK(ra->target_len == rb->target_len && ra->target - a == rb->target - b);
    CHECK(ra->path_len == rb->path_len && ra->path - a == rb->path - b);
    CHECK(ra->authority_len == rb->authority_len &&
          (ra->authority_len == 0 || ra->authority - a == rb->authority - b));
    CHECK(ra->version_minor == rb->version_minor);
    CHECK(ra->n_headers == rb->n_headers);
    for (i = 0; i < ra->n_headers; i++) {
        CHECK(ra->headers[i].name - a == rb->headers[i].name - b);
        CHECK(ra->headers[i].name_len == rb->headers[i].name_len);
        CHECK(ra->headers[i].value - a == rb->headers[i].value - b);
        CHECK(ra->headers[i].value_len == rb->headers[i].value_len);
    }
    CHECK(ra->has_content_length == rb->has_content_length);
    CHECK(!ra->has_content_length || ra->content_length == rb->content_length);
    CHECK(ra->chunked == rb->chunked);
    CHECK(ra->keep_alive == rb->keep_alive);
    CHECK(ra->expect_continue == rb->expect_continue);
}

static void fuzz_request(const uint8_t *data, size_t n, size_t k)
{
    static http_request whole, part;
    char *w = copy(data, n), *p = copy(data, k);
    int rc = http_parse_request(w, n, &whole);
    int r = http_parse_request(p, k, &part);

    CHECK(rc == HTTP_INCOMPLETE || rc == -HTTP_E400 || rc == -HTTP_E414 || rc == -HTTP_E417 ||
          rc == -HTTP_E431 || rc == -HTTP_E501 || rc == -HTTP_E505 || (rc > 0 && (size_t)rc <= n));
    CHECK(rc <= 0 || (size_t)rc <= HTTP_MAX_HEAD);
    if (rc > 0)
        check_request(w, (size_t)rc, &whole);
    if (r > 0)
        check_request(p, (size_t)r, &part);

    if (rc > 0 && (size_t)rc > k) {
        CHECK(r == HTTP_INCOMPLETE);
    } else if (rc > 0) {
        CHECK(r == rc);
        check_same(w, &whole, p, &part);
    } else if (rc == HTTP_INCOMPLETE) {
        CHECK(r == HTTP_INCOMPLETE);
    } else {
        /* An error shows only once its bytes are there. */
        CHECK(r == HTTP_INCOMPLETE || r == rc);
    }
    free(w);
    free(p);
}

struct decoded {
    int64_t result; /* bytes consumed when done, HTTP_INCOMPLETE, or the error */
    size_t out_len;
    char out[4096];
};

/* Decodes s[0..n) in two pieces split at k, each piece in its own exact-size
 * copy; the data found goes to d->out (truncated at its size; the length
 * counts all). */
static void chunked_decode(const uint8_t *s, size_t n, size_t k, struct decoded *d)
{
    http_chunked c;
    size_t piece[2] = {k, n - k}, base = 0, off, len, used;
    int64_t r;
    int i, done = 0;

    http_chunked_init(&c);
    d->out_len = 0;
    d->result = HTTP_INCOMPLETE;
    for (i = 0; i < 2 && !done; i++) {
        char *buf = copy(s + base, piece[i]);

        used = 0;
        while (used < piece[i] && !done) {
            r = http_chunked_feed(&c, buf + used, piece[i] - used, &done, &off, &len);
            if (r < 0) {
                CHECK(r == -HTTP_E400);
                d->result = r;
                free(buf);
                return;
            }
            CHECK((size_t)r <= piece[i] - used);
            CHECK(r > 0 || done); /* otherwise the caller would spin */
            CHECK(len == 0 || (off <= piece[i] - used && len <= piece[i] - used - off));
            CHECK(len == 0 || off + len <= (size_t)r);
            if (d->out_len < sizeof d->out)
                memcpy(d->out + d->out_len, buf + used + off,
                       len < sizeof d->out - d->out_len ? len : sizeof d->out - d->out_len);
            d->out_len += len;
            used += (size_t)r;
        }
        base += used;
        free(buf);
    }
    if (done)
        d->result = (int64_t)base;
}

static void fuzz_chunked(const uint8_t *data, size_t n, size_t k)
{
    static struct decoded whole, split;

    chunked_decode(data, n, n, &whole);
    chunked_decode(data, n, k, &split);
    CHECK(whole.result == split.result);
    if (whole.result >= 0) {
        size_t m = whole.out_len < sizeof whole.out ? whole.out_len : sizeof whole.out;

        CHECK(whole.out_len == split.out_len);
        CHECK(memcmp(whole.out, split.out, m) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t k;

    if (size == 0) {
        fuzz_request(data, 0, 0);
        return 0;
    }
    /* The split point comes from the last byte and the first, so that the
     * fuzzer can move it without changing the start of the request. */
    k = ((size_t)data[size - 1] << 8 | data[0]) % (size + 1);
    fuzz_request(data, size, k);
    fuzz_chunked(data, size, k);
    return 0;
}
