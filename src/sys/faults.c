/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* faults.c: GYRE_FAULTS parsing and the injection decision.
 *
 * The spec is read once per process (pthread_once) and copied into the global
 * gyre__faults, which is then read-only: wrappers test `gyre__faults.on` with
 * no lock. The decision for the k-th call of gyre__fault_hit() is the k-th
 * output of a SplitMix64 stream seeded with `seed`, a pure function of
 * (seed, k), so one thread running the same program with the same seed sees
 * the same faults at the same calls. With several threads, k is still unique
 * per call but which thread draws which k is up to the scheduler.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sys/sys.h"

struct gyre__faults gyre__faults;

/* Both counters only hand out unique numbers or count; nothing is published
 * through them, so relaxed ordering is enough. */
static atomic_uint_fast64_t calls;
static atomic_uint_fast64_t injected;
static atomic_uint_fast64_t injected_kind[GYRE__FAULT_KINDS];

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result;

static const char *const kind_names[GYRE__FAULT_KINDS] = {
    [GYRE__FAULT_EAGAIN] = "eagain", [GYRE__FAULT_EINTR] = "eintr", [GYRE__FAULT_SHORT] = "short",
    [GYRE__FAULT_ENOMEM] = "enomem", [GYRE__FAULT_DELAY] = "delay", [GYRE__FAULT_RESET] = "reset",
};

/* Parses a decimal probability in [0,1] ("0", "1", "0.25", ".5", "1.000")
 * into a fraction of UINT32_MAX. Done by hand rather than with strtod, whose
 * decimal point follows the locale, so "0.5" would fail under de_DE. Digits
 * past the ninth decimal are checked but do not change the value. */
static int parse_prob(const char *s, size_t len, uint32_t *out)
{
    uint64_t num = 0, den = 1;
    size_t i = 0, digits = 0;
    int whole = 0;

    if (i < len && (s[i] == '0' || s[i] == '1')) {
        whole = s[i] - '0';
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (whole && s[i] != '0')
                return -EINVAL;
            if (den < 1000000000u) {
                num = num * 10 + (uint64_t)(s[i] - '0');
                den *= 10;
            }
        }
    }
    if (i != len || digits == 0)
        return -EINVAL;
    /* num < den <= 1e9 < 2^30, so num * UINT32_MAX fits in 64 bits. */
    *out = whole ? UINT32_MAX : (uint32_t)((num * UINT32_MAX + den / 2) / den);
    return 0;
}

static int parse_seed(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Parses one "key=value" item of length len. */
static int parse_item(const char *s, size_t len, struct gyre__faults *f)
{
    const char *eq = memchr(s, '=', len);
    size_t klen, vlen;

    if (eq == NULL)
        return -EINVAL;
    klen = (size_t)(eq - s);
    vlen = len - klen - 1;
    if (klen == 4 && memcmp(s, "seed", 4) == 0)
        return parse_seed(eq + 1, vlen, &f->seed);
    for (int k = 0; k < GYRE__FAULT_KINDS; k++) {
        if (strlen(kind_names[k]) == klen && memcmp(s, kind_names[k], klen) == 0)
            return parse_prob(eq + 1, vlen, &f->prob[k]);
    }
    return -EINVAL;
}

int gyre__faults_parse(const char *spec, struct gyre__faults *f)
{
    struct gyre__faults tmp;

    memset(&tmp, 0, sizeof(tmp));
    if (spec == NULL || f == NULL)
        return -EINVAL;
    /* An empty value means "no faults", like an unset variable. Otherwise
     * every comma-separated item must parse: an empty item is a typo. */
    while (*spec != '\0') {
        const char *comma = strchr(spec, ',');
        size_t len = comma ? (size_t)(comma - spec) : strlen(spec);
        int rc = parse_item(spec, len, &tmp);

        if (rc < 0)
            return rc;
        if (comma == NULL)
            break;
        spec = comma + 1;
        if (*spec == '\0')
            return -EINVAL;
    }
    for (int k = 0; k < GYRE__FAULT_KINDS; k++)
        tmp.on |= tmp.prob[k] != 0;
    *f = tmp;
    return 0;
}

static void init_from_env(void)
{
    const char *spec = secure_getenv("GYRE_FAULTS");
    struct gyre__faults f;

    if (spec == NULL)
        return;
    init_result = gyre__faults_parse(spec, &f);
    if (init_result == 0)
        gyre__faults = f;
}

int gyre__faults_init(void)
{
    /* pthread_once orders the writes in init_from_env before every return
     * from pthread_once, so callers see the finished struct. */
    pthread_once(&init_once, init_from_env);
    return init_result;
}

static uint64_t splitmix64(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15u;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int gyre__fault_hit(enum gyre__fault kind)
{
    uint32_t p = gyre__faults.prob[kind];
    uint64_t h;

    /* A kind that is off draws no k, so the decisions for the kinds that are
     * on do not depend on how often the others are asked about. */
    if (p == 0)
        return 0;
    h = splitmix64(gyre__faults.seed, atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed));
    /* The high half decides, compared so that P=1 (UINT32_MAX) always hits;
     * the low half is the caller's random value. */
    if (p != UINT32_MAX && (uint32_t)(h >> 32) >= p)
        return 0;
    atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&injected_kind[kind], 1, memory_order_relaxed);
    return (int)((uint32_t)h >> 2) + 1;
}

uint64_t gyre__faults_injected(void)
{
    return atomic_load_explicit(&injected, memory_order_relaxed);
}

uint64_t gyre__faults_injected_kind(enum gyre__fault kind)
{
    return atomic_load_explicit(&injected_kind[kind], memory_order_relaxed);
}
