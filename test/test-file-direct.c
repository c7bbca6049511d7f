/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-file-direct.c: O_DIRECT reads and writes on every file engine --
 * aligned ones move exactly their bytes; a misaligned buffer, offset or
 * length fails with -EINVAL before anything is submitted; an uncached
 * O_DIRECT read never takes the inline path; and the O_DIRECT rules follow
 * the file behind a descriptor number, not a number gyre saw before.
 *
 * The kernel writes into user memory where ASan cannot see, so every buffer
 * lives in a mapping with PROT_NONE guard pages at both ends and canary
 * bytes around it: a write outside the buffer either faults or breaks a
 * canary, and a rejected request must leave even the buffer itself as it
 * was.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runner.h"

#define CANARY 0xC5u
#define FILL 0x3Cu

static gyre_stats stats_of(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    return st;
}

/* An O_DIRECT descriptor on a new file, or a skip where the file system has
 * no O_DIRECT (tmpfs, overlayfs: open fails with EINVAL). */
static int direct_open(const char *name, char *path, size_t len)
{
    int fd;

    test_tmppath(path, len, name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL)
        SKIP("O_DIRECT is not supported by the file system of the test directory");
    ASSERT_SYS(fd);
    return fd;
}

struct rules {
    uint32_t mem, off, unit; /* unit: a length and offset that is aligned for both */
};

static struct rules rules_of(int fd)
{
    struct rules r;

    ASSERT_EQ(gyre_file_alignment(fd, &r.mem, &r.off), 0);
    ASSERT_GT(r.mem, 0);
    ASSERT_GT(r.off, 0);
    ASSERT_EQ(r.mem & (r.mem - 1), 0);
    ASSERT_EQ(r.off & (r.off - 1), 0);
    r.unit = r.mem > r.off ? r.mem : r.off;
    return r;
}

/* A region of 4 units between two PROT_NONE pages, filled with canaries. */
struct guarded {
    unsigned char *map, *region;
    size_t map_len, region_len;
};

static void guarded_new(struct guarded *g, uint32_t unit)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    g->region_len = ((size_t)4 * unit + page - 1) / page * page;
    g->map_len = g->region_len + 2 * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(g->map != MAP_FAILED);
    ASSERT_SYS(mprotect(g->map, page, PROT_NONE));
    ASSERT_SYS(mprotect(g->map + page + g->region_len, page, PROT_NONE));
    g->region = g->map + page;
    memset(g->region, CANARY, g->region_len);
}

static void guarded_free(struct guarded *g)
{
    ASSERT_SYS(munmap(g->map, g->map_len));
}

/* Every byte of the region outside [buf, buf + len) is still a canary. */
static void canaries_intact(const struct guarded *g, const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < g->region_len; i++) {
        const unsigned char *p = g->region + i;

        if (p >= buf && p < buf + len)
            continue;
        if (*p != CANARY)
            test_fail(__FILE__, __LINE__, "canary at region offset %zu overwritten: 0x%02x", i, *p);
    }
}

static void pattern(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 31u + seed * 7u + (i >> 9));
}

static int64_t run(gyre_loop *loop, gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;

    return test_op_run(loop, t);
}

static void gyre_close(gyre_loop *loop, int fd)
{
    struct test_op t = {0};

    gyre_op_close(&t.op, fd);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

/* Aligned write, read, writev and readv; an uncached O_DIRECT read never
 * takes the inline path. */
void test_file_direct_rw(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct guarded w, r;
    struct rules ru;
    struct iovec iov[2];
    unsigned char *expect, *check;
    gyre_stats s0, s1;
    char path[4096];
    int fd = direct_open("direct", path, sizeof path), bfd;
    uint32_t u, len;

    ru = rules_of(fd);
    u = ru.unit;
    len = 2 * u;
    guarded_new(&w, u);
    guarded_new(&r, u);
    expect = malloc((size_t)8 * u);
    check = malloc((size_t)8 * u);
    ASSERT_TRUE(expect != NULL && check != NULL);

    /* write: units 0-1 of the file */
    pattern(w.region + u, len, 1);
    memcpy(expect, w.region + u, len);
    gyre_op_write(&t.op, fd, w.region + u, len, 0);
    ASSERT_EQ(run(loop, &t.op), len);
    canaries_intact(&w, w.region + u, len);

    /* writev: units 2-3, from two separate units of the region */
    memset(w.region, CANARY, w.region_len);
    pattern(w.region, u, 2);
    pattern(w.region + 2 * (size_t)u, u, 3);
    memcpy(expect + len, w.region, u);
    memcpy(expect + len + u, w.region + 2 * (size_t)u, u);
    iov[0].iov_base = w.region;
    iov[0].iov_len = u;
    iov[1].iov_base = w.region + 2 * (size_t)u;
    iov[1].iov_len = u;
    gyre_op_writev(&t.op, fd, iov, 2, len);
    ASSERT_EQ(run(loop, &t.op), len);

    /* read: units 0-1 back, uncached (O_DIRECT bypasses the page cache) */
    s0 = stats_of(loop);
    memset(r.region + u, FILL, len);
    gyre_op_read(&t.op, fd, r.region + u, len, 0);
    ASSERT_EQ(run(loop, &t.op), len);
    ASSERT_EQ(memcmp(r.region + u, expect, len), 0);
    canaries_intact(&r, r.region + u, len);

    /* readv: units 2-3 into units 3 and 1 of the region */
    memset(r.region, CANARY, r.region_len);
    iov[0].iov_base = r.region + 3 * (size_t)u;
    iov[0].iov_len = u;
    iov[1].iov_base = r.region + u;
    iov[1].iov_len = u;
    gyre_op_readv(&t.op, fd, iov, 2, len);
    ASSERT_EQ(run(loop, &t.op), len);
    ASSERT_EQ(memcmp(r.region + 3 * (size_t)u, expect + len, u), 0);
    ASSERT_EQ(memcmp(r.region + u, expect + len + u, u), 0);
    for (size_t i = 0; i < u; i++) {
        ASSERT_EQ(r.region[i], CANARY);
        ASSERT_EQ(r.region[2 * (size_t)u + i], CANARY);
    }

    /* Reading at the end of the file: a short read of whole units, then 0. */
    memset(r.region, CANARY, r.region_len);
    gyre_op_read(&t.op, fd, r.region + u, len, 3 * (uint64_t)u);
    ASSERT_EQ(run(loop, &t.op), u);
    ASSERT_EQ(memcmp(r.region + u, expect + 3 * (size_t)u, u), 0);
    /* The whole buffer, not just the u bytes read: the kernel may zero the
     * rest of a block it read past the end (seen on 6.18 with pread(2)). */
    canaries_intact(&r, r.region + u, len);
    memset(r.region, CANARY, r.region_len);
    gyre_op_read(&t.op, fd, r.region + u, len, 4 * (uint64_t)u);
    ASSERT_EQ(run(loop, &t.op), 0);
    canaries_intact(&r, r.region, 0);

    s1 = stats_of(loop);
    ASSERT_EQ(s1.file_inline, s0.file_inline);

    /* The file as the page cache sees it now. */
    bfd = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(bfd);
    ASSERT_EQ(pread(bfd, check, (size_t)8 * u, 0), 4 * (ssize_t)u);
    ASSERT_EQ(memcmp(check, expect, 4 * (size_t)u), 0);
    test_close(bfd);

    gyre_close(loop, fd);
    guarded_free(&w);
    guarded_free(&r);
    free(expect);
    free(check);
    test_loop_free(loop);
}

enum bad {
    BAD_BUF,
    BAD_OFF,
    BAD_LEN
};

/* One misaligned request: -EINVAL, exactly once, from the loop (not inside
 * submit); neither the buffer nor anything around it touched; nothing sent
 * to the pool or answered inline. */
static void misaligned(gyre_loop *loop, int fd, const struct rules *ru, int opcode, enum bad bad)
{
    struct test_op t = {0};
    struct guarded g;
    struct iovec iov[2];
    unsigned char *buf, *saved;
    uint64_t off = 0;
    uint32_t len = 2 * ru->unit;
    gyre_stats s0, s1;

    guarded_new(&g, ru->unit);
    buf = g.region + ru->unit;
    switch (bad) {
    case BAD_BUF:
        buf += ru->mem / 2 != 0 ? ru->mem / 2 : 1;
        break;
    case BAD_OFF:
        off = ru->off / 2 != 0 ? ru->off / 2 : 1;
        break;
    case BAD_LEN:
        len -= ru->off / 2 != 0 ? ru->off / 2 : 1;
        break;
    }
    pattern(buf, len, 9);
    saved = malloc(g.region_len);
    ASSERT_TRUE(saved != NULL);
    memcpy(saved, g.region, g.region_len);
    /* The vector forms put the bad piece second, after a good one. */
    iov[0].iov_base = g.region; /* unit 0: aligned */
    iov[0].iov_len = ru->unit;
    iov[1].iov_base = buf + ru->unit; /* misaligned with BAD_BUF */
    iov[1].iov_len = len - ru->unit;  /* misaligned with BAD_LEN */
    switch (opcode) {
    case 0:
        gyre_op_read(&t.op, fd, buf, len, off);
        break;
    case 1:
        gyre_op_write(&t.op, fd, buf, len, off);
        break;
    case 2:
        gyre_op_readv(&t.op, fd, iov, 2, off);
        break;
    default:
        gyre_op_writev(&t.op, fd, iov, 2, off);
        break;
    }
    s0 = stats_of(loop);
    ASSERT_EQ(run(loop, &t.op), -EINVAL);
    s1 = stats_of(loop);
    ASSERT_EQ(s1.file_pool, s0.file_pool);
    ASSERT_EQ(s1.file_inline, s0.file_inline);
    ASSERT_EQ(s1.ops_completed, s0.ops_completed + 1);
    if (memcmp(saved, g.region, g.region_len) != 0)
        test_fail(__FILE__, __LINE__, "misaligned op %d (bad %d) changed memory", opcode, (int)bad);
    free(saved);
    guarded_free(&g);
}

void test_file_direct_misaligned(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct guarded g;
    struct rules ru;
    unsigned char *before, *after;
    char path[4096];
    int fd = direct_open("misaligned", path, sizeof path), bfd;

    ru = rules_of(fd);
    if (ru.mem == 1 || ru.off == 1)
        FAIL("O_DIRECT rules of 1 byte: nothing can be misaligned (unexpected on ext4)");
    /* Four units of known content to fail to overwrite. */
    guarded_new(&g, ru.unit);
    pattern(g.region, 4 * (size_t)ru.unit, 5);
    gyre_op_write(&t.op, fd, g.region, 4 * ru.unit, 0);
    ASSERT_EQ(run(loop, &t.op), 4 * ru.unit);
    before = malloc(4 * (size_t)ru.unit);
    after = malloc(4 * (size_t)ru.unit + 1);
    ASSERT_TRUE(before != NULL && after != NULL);
    memcpy(before, g.region, 4 * (size_t)ru.unit);
    guarded_free(&g);

    for (int opcode = 0; opcode < 4; opcode++) {
        misaligned(loop, fd, &ru, opcode, BAD_BUF);
        misaligned(loop, fd, &ru, opcode, BAD_OFF);
        misaligned(loop, fd, &ru, opcode, BAD_LEN);
    }

    /* No misaligned write reached the file. */
    bfd = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(bfd);
    ASSERT_EQ(pread(bfd, after, 4 * (size_t)ru.unit + 1, 0), 4 * (ssize_t)ru.unit);
    ASSERT_EQ(memcmp(after, before, 4 * (size_t)ru.unit), 0);
    test_close(bfd);

    /* The same descriptor still serves aligned requests. */
    guarded_new(&g, ru.unit);
    gyre_op_read(&t.op, fd, g.region + ru.unit, ru.unit, ru.unit);
    ASSERT_EQ(run(loop, &t.op), ru.unit);
    ASSERT_EQ(memcmp(g.region + ru.unit, before + ru.unit, ru.unit), 0);
    canaries_intact(&g, g.region + ru.unit, ru.unit);
    guarded_free(&g);

    gyre_close(loop, fd);
    free(before);
    free(after);
    test_loop_free(loop);
}

/* Whether a descriptor is O_DIRECT, and its rules, belong to the file behind
 * the number, which may change without gyre seeing it (close(2), then open(2)
 * takes the lowest free number): a guess cached from the number's previous
 * file would skip the alignment check or take the inline path. Here a
 * buffered file's number, used once by gyre, goes to an O_DIRECT file. */
void test_file_direct_fd_reuse(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct guarded g;
    struct rules ru;
    unsigned char small[16];
    gyre_stats s0, s1;
    char path[4096], bpath[4096];
    int fd, num, bfd;

    test_tmppath(bpath, sizeof bpath, "buffered");
    bfd = open(bpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(bfd);
    test_write_bytes(bfd, "0123456789abcdef", 16);
    gyre_op_read(&t.op, bfd, small, 4, 1);
    ASSERT_EQ(run(loop, &t.op), 4);
    num = bfd;
    test_close(bfd);
    fd = direct_open("reuse", path, sizeof path);
    ASSERT_EQ(fd, num);
    ru = rules_of(fd);
    guarded_new(&g, ru.unit);
    pattern(g.region, 2 * (size_t)ru.unit, 4);
    gyre_op_write(&t.op, fd, g.region, 2 * ru.unit, 0);
    ASSERT_EQ(run(loop, &t.op), 2 * ru.unit);

    /* An aligned, uncached read is not answered inline ... */
    s0 = stats_of(loop);
    memset(g.region, CANARY, g.region_len);
    gyre_op_read(&t.op, fd, g.region + ru.unit, ru.unit, 0);
    ASSERT_EQ(run(loop, &t.op), ru.unit);
    s1 = stats_of(loop);
    ASSERT_EQ(s1.file_inline, s0.file_inline);
    /* ... and a misaligned one fails before submission, memory untouched. */
    memset(g.region, CANARY, g.region_len);
    gyre_op_read(&t.op, fd, g.region + ru.unit, ru.unit, 1);
    ASSERT_EQ(run(loop, &t.op), -EINVAL);
    canaries_intact(&g, g.region, 0);
    s0 = stats_of(loop);
    ASSERT_EQ(s0.file_pool, s1.file_pool);
    ASSERT_EQ(s0.file_inline, s1.file_inline);
    guarded_free(&g);

    gyre_close(loop, fd);
    test_loop_free(loop);
}

/* The other way: an O_DIRECT file's number, used by gyre, goes to a
 * buffered file, where any offset and length are fine. */
void test_file_direct_fd_reuse_buffered(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct guarded g;
    struct rules ru;
    unsigned char small[16];
    char path[4096], bpath[4096];
    int fd, bfd;

    test_tmppath(bpath, sizeof bpath, "buffered");
    bfd = open(bpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(bfd);
    test_write_bytes(bfd, "0123456789abcdef", 16);
    test_close(bfd);
    fd = direct_open("reuse", path, sizeof path);
    ru = rules_of(fd);
    guarded_new(&g, ru.unit);
    pattern(g.region, ru.unit, 4);
    gyre_op_write(&t.op, fd, g.region, ru.unit, 0);
    ASSERT_EQ(run(loop, &t.op), ru.unit);
    guarded_free(&g);
    test_close(fd);

    bfd = open(bpath, O_RDWR | O_CLOEXEC);
    ASSERT_EQ(bfd, fd);
    memset(small, 0, sizeof small);
    gyre_op_read(&t.op, bfd, small, 5, 3);
    ASSERT_EQ(run(loop, &t.op), 5);
    ASSERT_EQ(memcmp(small, "34567", 5), 0);
    gyre_op_write(&t.op, bfd, "XY", 2, 7);
    ASSERT_EQ(run(loop, &t.op), 2);
    ASSERT_EQ(pread(bfd, small, 16, 0), 16);
    ASSERT_EQ(memcmp(small, "0123456XY9abcdef", 16), 0);

    gyre_close(loop, bfd);
    test_loop_free(loop);
}

/* One O_DIRECT transfer of len bytes under short faults: a positive multiple
 * of the offset alignment, at most len (never -EINVAL: the request was
 * valid). Counts the short ones. */
static int64_t direct_once(gyre_loop *loop, int write, int fd, unsigned char *buf, uint32_t len,
                           uint64_t off, uint32_t align, int *shorts)
{
    struct test_op t = {0};
    int64_t r;

    if (write)
        gyre_op_write(&t.op, fd, buf, len, off);
    else
        gyre_op_read(&t.op, fd, buf, len, off);
    r = test_op_run(loop, &t);
    if (r <= 0 || r > len || r % align != 0)
        test_fail(__FILE__, __LINE__, "%s of %u at %ju: %jd (alignment %u)",
                  write ? "write" : "read", len, (uintmax_t)off, (intmax_t)r, align);
    if (r < len)
        (*shorts)++;
    return r;
}

/* GYRE_FAULTS short=P on O_DIRECT: a shortened request is still one the
 * kernel takes -- whole units of the fd's offset alignment -- and one under
 * two units is never shortened. So every write and read of 4 units
 * completes with a positive multiple of the alignment (redone until whole,
 * as a program would; the bytes then match), one of a single unit always
 * whole, and none with -EINVAL (which the kernel answered a fault that cut
 * a request to an unaligned length). The test adds short=0.5 to
 * GYRE_FAULTS (or sets seed=5,short=0.5) before its loop reads it. The
 * linuxaio engine shortens no length itself (its short is a prefix of
 * io_submit's iocbs; only what it leaves to the pool may be cut); on the
 * others some transfers must have been cut. */
void test_file_direct_faults_short(void)
{
    const char *env = getenv("GYRE_FAULTS");
    char spec[256], path[4096];
    gyre_loop *loop;
    gyre_stats st;
    struct rules ru;
    unsigned char *src, *dst;
    int fd, shorts = 0, chunks = (int)test_scale(32);
    uint32_t len, one;

    if (env == NULL)
        snprintf(spec, sizeof spec, "seed=5,short=0.5");
    else if (strstr(env, "short=") == NULL)
        snprintf(spec, sizeof spec, "%s,short=0.5", env);
    else
        snprintf(spec, sizeof spec, "%s", env);
    ASSERT_SYS(setenv("GYRE_FAULTS", spec, 1));
    fd = direct_open("direct-short", path, sizeof path);
    loop = test_loop_new();
    ru = rules_of(fd);
    len = 4 * ru.unit;
    /* One alignment unit, at an address aligned for memory too. */
    one = ru.off % ru.mem == 0 ? ru.off : ru.unit;
    src = aligned_alloc(ru.unit, (size_t)len * (size_t)chunks);
    dst = aligned_alloc(ru.unit, (size_t)len * (size_t)chunks);
    ASSERT_TRUE(src != NULL && dst != NULL);
    pattern(src, (size_t)len * (size_t)chunks, 9);
    memset(dst, FILL, (size_t)len * (size_t)chunks);

    for (int k = 0; k < chunks; k++) {
        unsigned char *p = src + (size_t)k * len;
        int tries = 0;

        while (direct_once(loop, 1, fd, p, len, (uint64_t)k * len, ru.off, &shorts) != len)
            ASSERT_LT(++tries, 100);
    }
    for (int k = 0; k < chunks; k++) {
        unsigned char *p = dst + (size_t)k * len;
        int tries = 0;

        while (direct_once(loop, 0, fd, p, len, (uint64_t)k * len, ru.off, &shorts) != len)
            ASSERT_LT(++tries, 100);
    }
    ASSERT_EQ(memcmp(src, dst, (size_t)len * (size_t)chunks), 0);
    /* Under two units: never cut. */
    if (one < 2 * ru.off) {
        for (int k = 0; k < chunks; k++) {
            int before = shorts;

            direct_once(loop, k & 1, fd, (k & 1 ? src : dst) + (size_t)k * len, one,
                        (uint64_t)k * len, ru.off, &shorts);
            ASSERT_EQ(shorts, before);
        }
    }
    ASSERT_EQ(memcmp(src, dst, (size_t)len * (size_t)chunks), 0);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    printf("%d short transfers of %d; faults_short %ju; alignment %u (mem %u)\n", shorts,
           4 * chunks, (uintmax_t)st.faults_short, ru.off, ru.mem);
    ASSERT_GE(st.faults_short, (uint64_t)shorts);
    if (!test_file_engine_is("linuxaio"))
        ASSERT_GT(shorts, 0);
    test_close(fd);
    free(src);
    free(dst);
    test_loop_free(loop);
}
