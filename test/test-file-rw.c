/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-file-rw.c: buffered file reads and writes on every file engine --
 * content checked byte for byte at seeded random offsets through read,
 * write, readv and writev; short reads at the end of the file; write, fsync
 * and fdatasync, then read back through a second descriptor; and the inline
 * fast path (a read the page cache answers whole completes without the
 * engine, counted in gyre_stats.file_inline).
 *
 * Every read buffer has guard bytes after the requested length, so a read
 * that reports n bytes is also checked for having written nothing past them.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

#define GUARD_BYTE 0xEEu

static int tmpfile_new(const char *name, char *path, size_t len)
{
    int fd;

    test_tmppath(path, len, name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    return fd;
}

static void fill_random(uint64_t *seed, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)test_rand(seed);
}

static gyre_stats stats_of(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    return st;
}

/* Splits [0, len) into up to 4 pieces (zero-length ones allowed), each at
 * its own place in `area` with a guard byte between neighbours; returns the
 * iovec count. */
static uint32_t split_iov(uint64_t *seed, unsigned char *area, size_t len, struct iovec *iov)
{
    uint32_t n = 1 + (uint32_t)(test_rand(seed) % 4);
    size_t left = len, at = 0;

    for (uint32_t i = 0; i < n; i++) {
        size_t piece = i + 1 == n ? left : (size_t)(test_rand(seed) % (left + 1));

        iov[i].iov_base = area + at;
        iov[i].iov_len = piece;
        at += piece + 1; /* one guard byte after every piece */
        left -= piece;
    }
    return n;
}

#define RW_SIZE (256u * 1024u)
#define RW_MAXLEN 8192u

/* Random reads and writes against an in-memory model of the file. */
void test_file_rw_random(void)
{
    gyre_loop *loop = test_loop_new();
    unsigned char *model = calloc(1, RW_SIZE);
    unsigned char *buf = malloc(RW_MAXLEN + 16);
    unsigned char *area = malloc(RW_MAXLEN + 16);
    unsigned char *check = malloc(RW_SIZE + 1);
    uint64_t seed = 0x5eed0001u;
    struct test_op t = {0};
    struct iovec iov[4];
    char path[4096];
    size_t rounds = test_scale(2000);
    int fd = tmpfile_new("random", path, sizeof path);

    ASSERT_TRUE(model != NULL && buf != NULL && area != NULL && check != NULL);
    /* The whole file first, in 32 KiB writes. */
    fill_random(&seed, model, RW_SIZE);
    for (uint32_t off = 0; off < RW_SIZE; off += 32768) {
        gyre_op_write(&t.op, fd, model + off, 32768, off);
        ASSERT_EQ(test_op_run(loop, &t), 32768);
    }

    for (size_t r = 0; r < rounds; r++) {
        uint32_t kind = (uint32_t)(test_rand(&seed) % 4);
        uint32_t off = (uint32_t)(test_rand(&seed) % RW_SIZE);
        uint32_t room = RW_SIZE - off < RW_MAXLEN ? RW_SIZE - off : RW_MAXLEN;
        uint32_t len = 1 + (uint32_t)(test_rand(&seed) % room);
        uint32_t n;
        size_t at;

        switch (kind) {
        case 0: /* write */
            fill_random(&seed, buf, len);
            gyre_op_write(&t.op, fd, buf, len, off);
            ASSERT_EQ(test_op_run(loop, &t), len);
            memcpy(model + off, buf, len);
            break;
        case 1: /* writev */
            memset(area, GUARD_BYTE, RW_MAXLEN + 16);
            n = split_iov(&seed, area, len, iov);
            at = 0;
            for (uint32_t i = 0; i < n; i++) {
                fill_random(&seed, iov[i].iov_base, iov[i].iov_len);
                memcpy(model + off + at, iov[i].iov_base, iov[i].iov_len);
                at += iov[i].iov_len;
            }
            gyre_op_writev(&t.op, fd, iov, n, off);
            ASSERT_EQ(test_op_run(loop, &t), len);
            break;
        case 2: /* read */
            memset(buf, GUARD_BYTE, RW_MAXLEN + 16);
            gyre_op_read(&t.op, fd, buf, len, off);
            ASSERT_EQ(test_op_run(loop, &t), len);
            ASSERT_EQ(memcmp(buf, model + off, len), 0);
            for (uint32_t i = len; i < RW_MAXLEN + 16; i++)
                ASSERT_EQ(buf[i], GUARD_BYTE);
            break;
        default: /* readv */
            memset(area, GUARD_BYTE, RW_MAXLEN + 16);
            n = split_iov(&seed, area, len, iov);
            gyre_op_readv(&t.op, fd, iov, n, off);
            ASSERT_EQ(test_op_run(loop, &t), len);
            at = 0;
            for (uint32_t i = 0; i < n; i++) {
                unsigned char *end = (unsigned char *)iov[i].iov_base + iov[i].iov_len;

                ASSERT_EQ(memcmp(iov[i].iov_base, model + off + at, iov[i].iov_len), 0);
                ASSERT_EQ(*end, GUARD_BYTE); /* the byte between pieces */
                at += iov[i].iov_len;
            }
            break;
        }
    }

    /* The file as a whole, read outside gyre. */
    ASSERT_EQ(pread(fd, check, RW_SIZE + 1, 0), RW_SIZE);
    ASSERT_EQ(memcmp(check, model, RW_SIZE), 0);

    test_close(fd);
    free(model);
    free(buf);
    free(area);
    free(check);
    test_loop_free(loop);
}

#define EOF_SIZE 10000u

static void eof_reads(gyre_loop *loop, int fd, const unsigned char *content)
{
    unsigned char buf[4096 + 16], a[100 + 1], b[5000 + 1];
    struct iovec iov[2] = {{a, 100}, {b, 5000}};
    struct test_op t = {0};

    /* Short at the end: exactly the bytes there are, nothing written past. */
    memset(buf, GUARD_BYTE, sizeof buf);
    gyre_op_read(&t.op, fd, buf, 4096, 8192);
    ASSERT_EQ(test_op_run(loop, &t), EOF_SIZE - 8192);
    ASSERT_EQ(memcmp(buf, content + 8192, EOF_SIZE - 8192), 0);
    for (size_t i = EOF_SIZE - 8192; i < sizeof buf; i++)
        ASSERT_EQ(buf[i], GUARD_BYTE);
    /* The last byte alone. */
    gyre_op_read(&t.op, fd, buf, 4096, EOF_SIZE - 1);
    ASSERT_EQ(test_op_run(loop, &t), 1);
    ASSERT_EQ(buf[0], content[EOF_SIZE - 1]);
    /* At and past the end: 0, distinct from an error, buffer untouched. */
    memset(buf, GUARD_BYTE, sizeof buf);
    gyre_op_read(&t.op, fd, buf, 4096, EOF_SIZE);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_read(&t.op, fd, buf, 4096, EOF_SIZE + 1);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_read(&t.op, fd, buf, 4096, (uint64_t)1 << 40);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        ASSERT_EQ(buf[i], GUARD_BYTE);
    /* A zero-length read is 0 too. */
    gyre_op_read(&t.op, fd, buf, 0, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);

    /* readv across the end: the first piece whole, the second in part. */
    memset(a, GUARD_BYTE, sizeof a);
    memset(b, GUARD_BYTE, sizeof b);
    gyre_op_readv(&t.op, fd, iov, 2, EOF_SIZE - 1000);
    ASSERT_EQ(test_op_run(loop, &t), 1000);
    ASSERT_EQ(memcmp(a, content + EOF_SIZE - 1000, 100), 0);
    ASSERT_EQ(memcmp(b, content + EOF_SIZE - 900, 900), 0);
    ASSERT_EQ(a[100], GUARD_BYTE);
    for (size_t i = 900; i < sizeof b; i++)
        ASSERT_EQ(b[i], GUARD_BYTE);
    gyre_op_readv(&t.op, fd, iov, 2, EOF_SIZE);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

/* Short reads at EOF, once from the page cache (the inline path may answer)
 * and once after the cache was dropped (the engine answers). */
void test_file_read_eof(void)
{
    gyre_loop *loop = test_loop_new();
    unsigned char content[EOF_SIZE];
    uint64_t seed = 0x5eed0002u;
    char path[4096];
    int fd = tmpfile_new("eof", path, sizeof path);

    fill_random(&seed, content, sizeof content);
    test_write_bytes(fd, (const char *)content, sizeof content);
    eof_reads(loop, fd, content);

    ASSERT_SYS(fdatasync(fd));
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    eof_reads(loop, fd, content);

    test_close(fd);
    test_loop_free(loop);
}

/* Write, fsync, write, fdatasync; then read back through a descriptor gyre
 * opened, which gyre also closes. */
void test_file_fsync_readback(void)
{
    enum {
        PART = 65536
    };
    gyre_loop *loop = test_loop_new();
    unsigned char *data = malloc(2 * PART), *back = malloc(2 * PART + 16);
    uint64_t seed = 0x5eed0003u;
    struct test_op t = {0};
    char path[4096];
    int fd = tmpfile_new("sync", path, sizeof path), fd2;

    ASSERT_TRUE(data != NULL && back != NULL);
    fill_random(&seed, data, 2 * PART);
    gyre_op_write(&t.op, fd, data, PART, 0);
    ASSERT_EQ(test_op_run(loop, &t), PART);
    gyre_op_fsync(&t.op, fd, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_write(&t.op, fd, data + PART, PART, PART);
    ASSERT_EQ(test_op_run(loop, &t), PART);
    gyre_op_fsync(&t.op, fd, 1);
    ASSERT_EQ(test_op_run(loop, &t), 0);

    gyre_op_openat(&t.op, AT_FDCWD, path, O_RDONLY, 0);
    fd2 = (int)test_op_run(loop, &t);
    ASSERT_GE(fd2, 0);
    ASSERT_TRUE((fcntl(fd2, F_GETFD) & FD_CLOEXEC) != 0);
    memset(back, GUARD_BYTE, 2 * PART + 16);
    gyre_op_read(&t.op, fd2, back, 2 * PART + 16, 0);
    ASSERT_EQ(test_op_run(loop, &t), 2 * PART);
    ASSERT_EQ(memcmp(back, data, 2 * PART), 0);
    for (size_t i = 2 * PART; i < 2 * PART + 16; i++)
        ASSERT_EQ(back[i], GUARD_BYTE);
    /* fsync on a read-only descriptor is allowed. */
    gyre_op_fsync(&t.op, fd2, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_close(&t.op, fd2);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(fcntl(fd2, F_GETFD), -1);

    test_close(fd);
    free(data);
    free(back);
    test_loop_free(loop);
}

/* The one read between a and b was answered inline, unless GYRE_FAULTS told
 * its RWF_NOWAIT try EAGAIN ("not cached"), which sends it to the engine. */
static void assert_inline(const gyre_stats *a, const gyre_stats *b)
{
    if (b->faults_eagain == a->faults_eagain) {
        ASSERT_EQ(b->file_inline, a->file_inline + 1);
        ASSERT_EQ(b->file_pool, a->file_pool);
    } else {
        ASSERT_LE(b->file_inline, a->file_inline + 1);
    }
}

/* Data just written is in the page cache: a read of it completes inline
 * (file_inline counts it, the engine never sees it) with the right bytes,
 * on every engine. Writes are never inline. */
void test_file_inline_cached(void)
{
    gyre_loop *loop = test_loop_new();
    unsigned char content[8192], buf[4096 + 16], a[1000], b[3000];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    uint64_t seed = 0x5eed0004u;
    struct test_op t = {0};
    gyre_stats s0, s1;
    char path[4096];
    int fd = tmpfile_new("inline", path, sizeof path);

    fill_random(&seed, content, sizeof content);
    test_write_bytes(fd, (const char *)content, sizeof content);

    s0 = stats_of(loop);
    memset(buf, GUARD_BYTE, sizeof buf);
    gyre_op_read(&t.op, fd, buf, 4096, 100);
    ASSERT_EQ(test_op_run(loop, &t), 4096);
    ASSERT_EQ(memcmp(buf, content + 100, 4096), 0);
    for (size_t i = 4096; i < sizeof buf; i++)
        ASSERT_EQ(buf[i], GUARD_BYTE);
    s1 = stats_of(loop);
    assert_inline(&s0, &s1);
    ASSERT_EQ(s1.ops_completed, s0.ops_completed + 1);

    gyre_op_readv(&t.op, fd, iov, 2, 4000);
    ASSERT_EQ(test_op_run(loop, &t), 4000);
    ASSERT_EQ(memcmp(a, content + 4000, sizeof a), 0);
    ASSERT_EQ(memcmp(b, content + 5000, sizeof b), 0);
    s0 = stats_of(loop);
    assert_inline(&s1, &s0);

    /* A write is never answered inline. */
    gyre_op_write(&t.op, fd, "fresh", 5, 8192);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    s1 = stats_of(loop);
    ASSERT_EQ(s1.file_inline, s0.file_inline);
    /* ... and what it wrote is read inline right after. */
    gyre_op_read(&t.op, fd, buf, 5, 8192);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(memcmp(buf, "fresh", 5), 0);
    s0 = stats_of(loop);
    assert_inline(&s1, &s0);

    test_close(fd);
    test_loop_free(loop);
}
