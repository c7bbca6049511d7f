/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* parser.c: gyre-http's request parser and chunked-body decoder (see
 * parser.h). Pure: no I/O, no allocation, no global state.
 *
 * Split invariance: every decision is made from bytes that are present, and
 * the head limit is positional (the end of the head must lie within the
 * first HTTP_MAX_HEAD bytes), so a prefix of a request either gives
 * HTTP_INCOMPLETE or the same error the whole request gives; the unit tests
 * check this at every split point.
 */
#include "parser.h"

#include <string.h>

/* Byte classes, one lookup per byte on the hot path: CH_TOKEN is RFC 9110
 * 5.6.2's tchar (ALPHA, DIGIT and !#$%&'*+-.^_`|~); CH_HOST is RFC 3986
 * 3.2.2's reg-name bytes (unreserved, sub-delims, and the '%' of a
 * pct-encoded octet, whose hex digits are unreserved already). Bytes from
 * 0x80 on (the rest of the table, zero) are in neither. */
enum {
    CH_TOKEN = 1,
    CH_HOST = 2
};

static const unsigned char char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 3, 0, 1, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 2, 0, 2, 0, 0,
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 1, 3,
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 1, 0, 3, 0,
};

static int is_tchar(unsigned char ch)
{
    return char_class[ch] & CH_TOKEN;
}

/* Field value bytes: VCHAR, obs-text, SP and HTAB (RFC 9110 5.5). */
static int is_value_char(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || (ch > 0x20 && ch != 0x7f);
}

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

static int ieq(const char *a, uint32_t a_len, const char *b)
{
    uint32_t i;

    for (i = 0; i < a_len; i++)
        if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return b[i] == '\0';
}

static const struct {
    const char *name;
    http_method method;
} methods[] = {
    {"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},       {"POST", HTTP_POST},
    {"PUT", HTTP_PUT},     {"DELETE", HTTP_DELETE},   {"OPTIONS", HTTP_OPTIONS},
    {"TRACE", HTTP_TRACE}, {"CONNECT", HTTP_CONNECT}, {"PATCH", HTTP_PATCH},
};

/* Methods are case-sensitive (RFC 9110 9.1). */
static http_method method_of(const char *s, uint32_t len)
{
    size_t i;

    for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, s, len) == 0)
            return methods[i].method;
    return HTTP_OTHER;
}

/* The longest method token accepted; longer is 400 (no method is anywhere
 * near, and the bound keeps a garbage line from being scanned far). */
#define HTTP_MAX_METHOD 32

/* Whether the comma-separated list value[0..len) holds token (any case). */
static int list_has(const char *value, uint32_t len, const char *token)
{
    uint32_t i = 0, start, end;

    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end > start && ieq(value + start, end - start, token))
            return 1;
    }
    return 0;
}

static int is_host_char(unsigned char ch)
{
    return char_class[ch] & CH_HOST;
}

/* uri-host [ ":" port ] (RFC 9110 7.2, 4.2.3). The host may be empty only
 * where allow_empty says (Host: may be, an http URI's may not); userinfo
 * ("user@host") is refused, as RFC 9110 4.2.4 asks of recipients. */
static int valid_authority(const char *v, uint32_t len, int allow_empty)
{
    uint32_t i = 0, host_end;

    if (len > 0 && v[0] == '[') {
        /* IP-literal: IPv6 or IPvFuture, loosely; the bracket is what
         * matters, so that a ':' inside is not taken for the port's. */
        for (i = 1; i < len && v[i] != ']'; i++)
            if (!is_host_char((unsigned char)v[i]) && v[i] != ':')
                return 0;
        if (i == len || i == 1)
            return 0;
        i++;
    } else {
        while (i < len && is_host_char((unsigned char)v[i]))
            i++;
    }
    host_end = i;
    if (host_end == 0 && !allow_empty)
        return 0;
    if (i < len && v[i] == ':') {
        for (i++; i < len; i++)
            if (v[i] < '0' || v[i] > '9')
                return 0;
    }
    return i == len;
}

/* Splits an absolute-form target ("http://authority/path?query", RFC 9112
 * 3.2.2) into req->authority and req->path. Returns 0, or -1 if it is not
 * one this server answers: a scheme other than http or https, or a missing
 * or malformed authority. */
static int split_absolute(http_request *req)
{
    const char *t = req->target;
    uint32_t len = req->target_len, i = 0, start;

    while (i < len && t[i] != ':')
        i++;
    if (!(ieq(t, i, "http") || ieq(t, i, "https")) || len - i < 3 || t[i + 1] != '/' ||
        t[i + 2] != '/')
        return -1;
    start = i + 3;
    for (i = start; i < len && t[i] != '/' && t[i] != '?'; i++)
        ;
    if (!valid_authority(t + start, i - start, 0))
        return -1;
    req->authority = t + start;
    req->authority_len = i - start;
    req->path = t + i;
    req->path_len = len - i;
    return 0;
}

/* Transfer-Encoding lists, over all its lines as one list (RFC 9110 5.3):
 * TE_CHUNKED once chunked was the last coding so far, TE_OTHER for any
 * other coding, TE_BAD for a coding after chunked, chunked twice or an
 * empty list. */
enum {
    TE_CHUNKED = 1,
    TE_OTHER = 2,
    TE_BAD = 4
};

static void codings(const char *value, uint32_t len, int *state)
{
    uint32_t i = 0, start, end;
    int any = 0;

    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        any = 1;
        if (*state & TE_CHUNKED)
            *state |= TE_BAD; /* something after chunked, chunked included */
        if (ieq(value + start, end - start, "chunked"))
            *state |= TE_CHUNKED;
        else
            *state = (*state & ~TE_CHUNKED) | TE_OTHER;
    }
    if (!any)
        *state |= TE_BAD;
}

/* Content-Length: 1*DIGIT, at most 18 digits (no overflow). */
static int parse_length(const char *v, uint32_t len, uint64_t *out)
{
    uint64_t n = 0;
    uint32_t i;

    if (len == 0 || len > 18)
        return -1;
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* What the headers say about framing and the connection. Returns 0 or
 * -HTTP_E*. */
static int interpret_headers(http_request *req, int absolute)
{
    uint32_t i, hosts = 0, te = 0;
    int close = 0, keep = 0, expect_other = 0, te_state = 0;
    uint64_t n;

    /* Every field is set here, for every request: a caller that reuses one
     * http_request across pipelined requests must not see the previous
     * request's length (that gave a bodiless request 100 Continue). */
    req->content_length = 0;
    req->has_content_length = 0;
    req->chunked = 0;
    req->expect_continue = 0;
    for (i = 0; i < req->n_headers; i++) {
        const http_header *h = &req->headers[i];

        if (ieq(h->name, h->name_len, "content-length")) {
            if (parse_length(h->value, h->value_len, &n) != 0)
                return -HTTP_E400;
            if (req->has_content_length && n != req->content_length)
                return -HTTP_E400;
            req->content_length = n;
            req->has_content_length = 1;
        } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
            te++;
            codings(h->value, h->value_len, &te_state);
        } else if (ieq(h->name, h->name_len, "host")) {
            if (!valid_authority(h->value, h->value_len, 1))
                return -HTTP_E400;
            /* RFC 9112 3.2.2: an absolute-form target's authority wins. */
            if (!absolute) {
                req->authority = h->value;
                req->authority_len = h->value_len;
            }
            hosts++;
        } else if (ieq(h->name, h->name_len, "connection")) {
            close |= list_has(h->value, h->value_len, "close");
            keep |= list_has(h->value, h->value_len, "keep-alive");
        } else if (ieq(h->name, h->name_len, "expect")) {
            if (ieq(h->value, h->value_len, "100-continue"))
                req->expect_continue = 1;
            else if (h->value_len > 0)
                expect_other = 1;
        }
    }
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing, and
     * with Content-Length too it is the classic smuggling vector; 6.3: a
     * body whose last coding is not chunked (or that is chunked twice, 7)
     * has no length that can be trusted. Those are 400 and close; a coding
     * this server does not undo, under a final chunked, is 501. */
    if (te && (req->version_minor == 0 || req->has_content_length ||
               (te_state & (TE_BAD | TE_CHUNKED)) != TE_CHUNKED))
        return -HTTP_E400;
    if (te_state & TE_OTHER)
        return -HTTP_E501;
    req->chunked = te > 0;
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1. */
    if (req->version_minor == 1 && hosts != 1)
        return -HTTP_E400;
    if (req->version_minor == 0 && hosts > 1)
        return -HTTP_E400;
    req->keep_alive = (uint8_t)(req->version_minor == 1 ? !close : keep && !close);
    /* RFC 9110 10.1.1: HTTP/1.0 predates expectations; they are ignored. */
    if (req->version_minor == 0) {
        req->expect_continue = 0;
    } else if (expect_other) {
        req->expect_continue = 0;
        return -HTTP_E417;
    }
    return 0;
}

/* Matches the bytes present against the fixed text pat: 1 when all of pat
 * is there, 0 when a prefix of it is, -1 on a mismatch. '#' in pat is any
 * digit. */
static int match_fixed(const unsigned char *p, size_t avail, const char *pat)
{
    size_t i;

    for (i = 0; pat[i]; i++) {
        if (i == avail)
            return 0;
        if (pat[i] == '#' ? (p[i] < '0' || p[i] > '9') : p[i] != (unsigned char)pat[i])
            return -1;
    }
    return 1;
}

/* The head within p[0..len), where len is already capped at HTTP_MAX_HEAD. */
static int parse_head(const unsigned char *p, size_t len, http_request *req, int *absolute)
{
    size_t i = 0, start, vend;
    int m;

    /* method SP request-target SP HTTP-version CRLF */
    while (i < len && is_tchar(p[i]) && i <= HTTP_MAX_METHOD)
        i++;
    if (i > HTTP_MAX_METHOD)
        return -HTTP_E400;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == 0 || p[i] != ' ')
        return -HTTP_E400;
    req->method_name = (const char *)p;
    req->method_len = (uint32_t)i;
    req->method = method_of((const char *)p, (uint32_t)i);
    start = ++i;
    while (i < len && p[i] > 0x20 && p[i] != 0x7f) {
        if (++i - start > HTTP_MAX_TARGET)
            return -HTTP_E414;
    }
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == start || p[i] != ' ')
        return -HTTP_E400;
    req->target = (const char *)p + start;
    req->target_len = (uint32_t)(i - start);
    req->path = req->target;
    req->path_len = req->target_len;
    req->authority = NULL;
    req->authority_len = 0;
    *absolute = 0;
    /* origin-form, "*" for OPTIONS, or absolute-form, which RFC 9112 3.2.2
     * requires a server to accept; authority-form is CONNECT's, for
     * proxies. */
    if (p[start] != '/' &&
        !(req->target_len == 1 && p[start] == '*' && req->method == HTTP_OPTIONS)) {
        if (split_absolute(req) != 0)
            return -HTTP_E400;
        *absolute = 1;
    }
    i++;
    m = match_fixed(p + i, len - i, "HTTP/#.#\r\n");
    if (m <= 0) {
        /* A lone LF, or a version that is not digits, is malformed. */
        return m == 0 ? HTTP_INCOMPLETE : -HTTP_E400;
    }
    if (p[i + 5] != '1')
        return -HTTP_E505;
    /* A later 1.x minor is answered as 1.1 (RFC 9110 6.2). */
    req->version_minor = p[i + 7] == '0' ? 0 : 1;
    i += 10;

    req->n_headers = 0;
    for (;;) {
        http_header *h;

        if (i == len)
            return HTTP_INCOMPLETE;
        if (p[i] == '\r') {
            if (i + 1 == len)
                return HTTP_INCOMPLETE;
            if (p[i + 1] != '\n')
                return -HTTP_E400;
            i += 2;
            break;
        }
        /* Whitespace here is obsolete line folding or a header name that
         * starts with a space: both 400 (RFC 9112 5.2). */
        if (!is_tchar(p[i]))
            return -HTTP_E400;
        if (req->n_headers == HTTP_MAX_HEADERS)
            return -HTTP_E431;
        h = &req->headers[req->n_headers];
        start = i;
        while (i < len && is_tchar(p[i]))
            i++;
        if (i == len)
            return HTTP_INCOMPLETE;
        if (p[i] != ':')
            return -HTTP_E400; /* includes space before the colon */
        h->name = (const char *)p + start;
        h->name_len = (uint32_t)(i - start);
        i++;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        start = i;
        while (i < len && is_value_char(p[i]))
            i++;
        if (i == len)
            return HTTP_INCOMPLETE;
        if (p[i] != '\r')
            return -HTTP_E400; /* a control byte, or a bare LF */
        if (i + 1 == len)
            return HTTP_INCOMPLETE;
        if (p[i + 1] != '\n')
            return -HTTP_E400;
        vend = i;
        while (vend > start && (p[vend - 1] == ' ' || p[vend - 1] == '\t'))
            vend--;
        h->value = (const char *)p + start;
        h->value_len = (uint32_t)(vend - start);
        req->n_headers++;
        i += 2;
    }
    return (int)i;
}

int http_parse_request(const char *buf, size_t len, http_request *req)
{
    size_t cap = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    int absolute, rc = parse_head((const unsigned char *)buf, cap, req, &absolute), err;

    if (rc == HTTP_INCOMPLETE && len >= HTTP_MAX_HEAD)
        return -HTTP_E431;
    if (rc <= 0)
        return rc;
    err = interpret_headers(req, absolute);
    return err < 0 ? err : rc;
}

const char *http_header_get(const http_request *req, const char *name, uint32_t *len)
{
    uint32_t i;

    for (i = 0; i < req->n_headers; i++) {
        if (ieq(req->headers[i].name, req->headers[i].name_len, name)) {
            *len = req->headers[i].value_len;
            return req->headers[i].value;
        }
    }
    return NULL;
}

/* --- chunked bodies (RFC 9112 7.1) --- */

enum {
    C_SIZE = 0, /* hex digits of a chunk size */
    C_EXT,      /* chunk extensions, ignored, up to CR */
    C_SIZE_LF,  /* the LF ending the size line */
    C_DATA,     /* chunk data */
    C_DATA_CR,  /* the CRLF after the data */
    C_DATA_LF,
    C_TRAILER, /* the start of a trailer line, or the final CRLF */
    C_TRAILER_LINE,
    C_TRAILER_LF,
    C_END_LF, /* the LF of the final CRLF */
    C_DONE,
};

/* Chunk sizes stay below 2^60 (so `left * 16` never overflows) however
 * many leading zeros come first; the digit count is bounded on its own so
 * that a size line of zeros ends too. */
#define CHUNK_MAX_DIGITS 64
#define CHUNK_MAX_EXT 1024
#define CHUNK_MAX_TRAILERS 4096

void http_chunked_init(http_chunked *c)
{
    memset(c, 0, sizeof *c);
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int is_line_char(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

int64_t http_chunked_feed(http_chunked *c, const char *buf, size_t len, int *done, size_t *data_off,
                          size_t *data_len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0, n;
    int h;

    *done = c->state == C_DONE;
    *data_off = *data_len = 0;
    while (i < len && !*done) {
        unsigned char ch = p[i];

        switch (c->state) {
        case C_SIZE:
            h = hex_value(ch);
            if (h >= 0) {
                if (c->digits == CHUNK_MAX_DIGITS || (c->left >> 56) != 0)
                    return -HTTP_E400;
                c->left = c->left * 16 + (uint64_t)h;
                c->digits++;
            } else if (c->digits == 0) {
                return -HTTP_E400;
            } else if (ch == '\r') {
                c->state = C_SIZE_LF;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = C_EXT;
                c->count = 0;
            } else {
                return -HTTP_E400;
            }
            i++;
            break;
        case C_EXT:
            if (ch == '\r')
                c->state = C_SIZE_LF;
            else if (!is_line_char(ch) || ++c->count > CHUNK_MAX_EXT)
                return -HTTP_E400;
            i++;
            break;
        case C_SIZE_LF:
            if (ch != '\n')
                return -HTTP_E400;
            i++;
            c->digits = 0;
            c->count = 0;
            c->state = c->left == 0 ? C_TRAILER : C_DATA;
            break;
        case C_DATA:
            n = len - i;
            if (n > c->left)
                n = (size_t)c->left;
            *data_off = i;
            *data_len = n;
            c->left -= n;
            i += n;
            if (c->left == 0)
                c->state = C_DATA_CR;
            return (int64_t)i;
        case C_DATA_CR:
        case C_DATA_LF:
            if (ch != (c->state == C_DATA_CR ? '\r' : '\n'))
                return -HTTP_E400;
            c->state = c->state == C_DATA_CR ? C_DATA_LF : C_SIZE;
            i++;
            break;
        case C_TRAILER:
            if (ch == '\r') {
                c->state = C_END_LF;
                i++;
            } else {
                c->state = C_TRAILER_LINE; /* the byte is read there */
            }
            break;
        case C_TRAILER_LINE:
            if (ch == '\r')
                c->state = C_TRAILER_LF;
            else if (!is_line_char(ch))
                return -HTTP_E400;
            if (++c->count > CHUNK_MAX_TRAILERS)
                return -HTTP_E400;
            i++;
            break;
        case C_TRAILER_LF:
            if (ch != '\n')
                return -HTTP_E400;
            c->state = C_TRAILER;
            i++;
            break;
        case C_END_LF:
            if (ch != '\n')
                return -HTTP_E400;
            c->state = C_DONE;
            *done = 1;
            i++;
            break;
        default:
            *done = 1;
            break;
        }
    }
    return (int64_t)i;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
