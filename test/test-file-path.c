/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-file-path.c: the file and path operations beyond read and write --
 * ftruncate, fallocate, unlinkat, renameat, mkdirat, copy_file_range and
 * readdir -- on every file engine, checked by their effect on the file
 * system (statx, the bytes, the names), and each one's route: an op the
 * engine cannot carry goes to the pool and gyre_stats.file_pool counts it.
 *
 * The routes expected: the pool engine sends everything to the pool; the
 * uring engine carries every op io_uring has (FTRUNCATE only from 6.9, and
 * only with GYRE_URING_PROFILE unset or "full"), never copy_file_range or
 * readdir; the AIO engines carry no path operation.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "runner.h"

enum route {
    R_FSTAT, /* statx, openat */
    R_FTRUNCATE,
    R_FALLOCATE,
    R_UNLINKAT,
    R_RENAMEAT,
    R_MKDIRAT,
    R_COPY,
    R_READDIR
};

static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;

    ASSERT_SYS(uname(&u));
    if (sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

static int uring_profile_full(void)
{
    const char *p = getenv("GYRE_URING_PROFILE");

    return p == NULL || (strcmp(p, "5.15") != 0 && strcmp(p, "6.1") != 0);
}

/* 1 if the engine under test carries ops of this kind itself. */
static int engine_carries(enum route r)
{
    if (test_file_engine_is("uring")) {
        switch (r) {
        case R_FTRUNCATE:
            return uring_profile_full() && kernel_at_least(6, 9);
        case R_COPY:
        case R_READDIR:
            return 0;
        default:
            return 1;
        }
    }
    return 0; /* pool; linuxaio and posixaio carry only reads, writes, syncs */
}

static uint64_t pool_count(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    return st.file_pool;
}

/* Runs one op and checks its route in the stats. */
static int64_t run_routed(gyre_loop *loop, struct test_op *t, enum route r)
{
    uint64_t before = pool_count(loop);
    int64_t res = test_op_run(loop, t);

    ASSERT_EQ(pool_count(loop), before + (engine_carries(r) ? 0 : 1));
    return res;
}

static int dir_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    ASSERT_SYS(fd);
    return fd;
}

static struct statx stat_of(gyre_loop *loop, int dfd, const char *name)
{
    struct test_op t = {0};
    struct statx stx;

    memset(&stx, 0, sizeof stx);
    gyre_op_statx(&t.op, dfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx);
    ASSERT_EQ(run_routed(loop, &t, R_FSTAT), 0);
    ASSERT_TRUE((stx.stx_mask & (STATX_SIZE | STATX_TYPE)) == (STATX_SIZE | STATX_TYPE));
    return stx;
}

static int64_t stat_err(gyre_loop *loop, int dfd, const char *name)
{
    struct test_op t = {0};
    struct statx stx;

    gyre_op_statx(&t.op, dfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx);
    return run_routed(loop, &t, R_FSTAT);
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)test_rand(&s);
}

void test_file_ftruncate(void)
{
    gyre_loop *loop = test_loop_new();
    unsigned char data[10000], back[10000];
    struct test_op t = {0};
    int dfd = dir_open(test_tmpdir());
    int fd = openat(dfd, "trunc", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), ro;

    ASSERT_SYS(fd);
    fill(data, sizeof data, 1);
    test_write_bytes(fd, (const char *)data, sizeof data);

    gyre_op_ftruncate(&t.op, fd, 3000);
    ASSERT_EQ(run_routed(loop, &t, R_FTRUNCATE), 0);
    ASSERT_EQ(stat_of(loop, dfd, "trunc").stx_size, 3000);
    ASSERT_EQ(pread(fd, back, sizeof back, 0), 3000);
    ASSERT_EQ(memcmp(back, data, 3000), 0);

    /* Growing leaves a hole that reads as zeros. */
    gyre_op_ftruncate(&t.op, fd, (uint64_t)1 << 20);
    ASSERT_EQ(run_routed(loop, &t, R_FTRUNCATE), 0);
    ASSERT_EQ(stat_of(loop, dfd, "trunc").stx_size, (uint64_t)1 << 20);
    ASSERT_EQ(pread(fd, back, 100, 500000), 100);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(back[i], 0);

    gyre_op_ftruncate(&t.op, fd, 0);
    ASSERT_EQ(run_routed(loop, &t, R_FTRUNCATE), 0);
    ASSERT_EQ(stat_of(loop, dfd, "trunc").stx_size, 0);

    /* Not open for writing: EINVAL (ftruncate(2)). */
    ro = openat(dfd, "trunc", O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(ro);
    gyre_op_ftruncate(&t.op, ro, 10);
    ASSERT_EQ(run_routed(loop, &t, R_FTRUNCATE), -EINVAL);
    test_close(ro);

    test_close(fd);
    test_close(dfd);
    test_loop_free(loop);
}

void test_file_fallocate(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct statx stx;
    unsigned char back[64];
    int dfd = dir_open(test_tmpdir());
    int fd = openat(dfd, "falloc", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    ASSERT_SYS(fd);
    /* Mode 0 allocates and extends. */
    gyre_op_fallocate(&t.op, fd, 0, 0, (uint64_t)1 << 20);
    ASSERT_EQ(run_routed(loop, &t, R_FALLOCATE), 0);
    stx = stat_of(loop, dfd, "falloc");
    ASSERT_EQ(stx.stx_size, (uint64_t)1 << 20);
    ASSERT_GE(stx.stx_blocks * 512, (uint64_t)1 << 20);
    ASSERT_EQ(pread(fd, back, sizeof back, 4096), sizeof back);
    for (size_t i = 0; i < sizeof back; i++)
        ASSERT_EQ(back[i], 0);
    /* An offset beyond the end extends to offset + len. */
    gyre_op_fallocate(&t.op, fd, 0, (uint64_t)2 << 20, 4096);
    ASSERT_EQ(run_routed(loop, &t, R_FALLOCATE), 0);
    ASSERT_EQ(stat_of(loop, dfd, "falloc").stx_size, ((uint64_t)2 << 20) + 4096);
    /* FALLOC_FL_KEEP_SIZE: the mode reaches the syscall. */
    gyre_op_fallocate(&t.op, fd, FALLOC_FL_KEEP_SIZE, (uint64_t)4 << 20, 65536);
    ASSERT_EQ(run_routed(loop, &t, R_FALLOCATE), 0);
    ASSERT_EQ(stat_of(loop, dfd, "falloc").stx_size, ((uint64_t)2 << 20) + 4096);
    /* A zero length is EINVAL (fallocate(2)). */
    gyre_op_fallocate(&t.op, fd, 0, 0, 0);
    ASSERT_EQ(run_routed(loop, &t, R_FALLOCATE), -EINVAL);

    test_close(fd);
    test_close(dfd);
    test_loop_free(loop);
}

void test_file_unlinkat(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char path[4096];
    int dfd = dir_open(test_tmpdir());
    int fd = openat(dfd, "victim", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    ASSERT_SYS(fd);
    test_close(fd);
    ASSERT_SYS(mkdirat(dfd, "emptydir", 0700));

    gyre_op_unlinkat(&t.op, dfd, "victim", 0);
    ASSERT_EQ(run_routed(loop, &t, R_UNLINKAT), 0);
    ASSERT_EQ(stat_err(loop, dfd, "victim"), -ENOENT);
    gyre_op_unlinkat(&t.op, dfd, "emptydir", AT_REMOVEDIR);
    ASSERT_EQ(run_routed(loop, &t, R_UNLINKAT), 0);
    ASSERT_EQ(stat_err(loop, dfd, "emptydir"), -ENOENT);

    /* An absolute path ignores dirfd; AT_FDCWD works too. */
    test_tmppath(path, sizeof path, "abs");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_close(fd);
    gyre_op_unlinkat(&t.op, AT_FDCWD, path, 0);
    ASSERT_EQ(run_routed(loop, &t, R_UNLINKAT), 0);
    ASSERT_EQ(access(path, F_OK), -1);
    ASSERT_EQ(errno, ENOENT);
    /* Gone means gone: a second unlink finds nothing. */
    gyre_op_unlinkat(&t.op, dfd, "victim", 0);
    ASSERT_EQ(run_routed(loop, &t, R_UNLINKAT), -ENOENT);

    test_close(dfd);
    test_loop_free(loop);
}

void test_file_renameat(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[16];
    int dfd = dir_open(test_tmpdir()), sub, fd;

    ASSERT_SYS(mkdirat(dfd, "sub", 0700));
    sub = openat(dfd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(sub);
    fd = openat(dfd, "old", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "old-content", 11);
    test_close(fd);

    /* Old gone, new there with the content. */
    gyre_op_renameat(&t.op, dfd, "old", dfd, "new", 0);
    ASSERT_EQ(run_routed(loop, &t, R_RENAMEAT), 0);
    ASSERT_EQ(stat_err(loop, dfd, "old"), -ENOENT);
    ASSERT_EQ(stat_of(loop, dfd, "new").stx_size, 11);
    /* Across two directory descriptors. */
    gyre_op_renameat(&t.op, dfd, "new", sub, "moved", 0);
    ASSERT_EQ(run_routed(loop, &t, R_RENAMEAT), 0);
    ASSERT_EQ(stat_err(loop, dfd, "new"), -ENOENT);
    ASSERT_EQ(stat_of(loop, sub, "moved").stx_size, 11);

    /* RENAME_NOREPLACE onto an existing name: -EEXIST, both unchanged. */
    fd = openat(dfd, "other", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "other", 5);
    test_close(fd);
    gyre_op_renameat(&t.op, sub, "moved", dfd, "other", RENAME_NOREPLACE);
    ASSERT_EQ(run_routed(loop, &t, R_RENAMEAT), -EEXIST);
    ASSERT_EQ(stat_of(loop, sub, "moved").stx_size, 11);
    ASSERT_EQ(stat_of(loop, dfd, "other").stx_size, 5);
    /* Without the flag it replaces. */
    gyre_op_renameat(&t.op, sub, "moved", dfd, "other", 0);
    ASSERT_EQ(run_routed(loop, &t, R_RENAMEAT), 0);
    ASSERT_EQ(stat_err(loop, sub, "moved"), -ENOENT);
    fd = openat(dfd, "other", O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(fd);
    ASSERT_EQ(read(fd, buf, sizeof buf), 11);
    ASSERT_EQ(memcmp(buf, "old-content", 11), 0);
    test_close(fd);

    test_close(sub);
    test_close(dfd);
    test_loop_free(loop);
}

void test_file_mkdirat(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct statx stx;
    int dfd = dir_open(test_tmpdir()), sub;

    umask(022);
    gyre_op_mkdirat(&t.op, dfd, "made", 0750);
    ASSERT_EQ(run_routed(loop, &t, R_MKDIRAT), 0);
    stx = stat_of(loop, dfd, "made");
    ASSERT_TRUE(S_ISDIR(stx.stx_mode));
    ASSERT_EQ(stx.stx_mode & 07777, 0750);
    /* The umask applies, as for mkdir(2). */
    gyre_op_mkdirat(&t.op, dfd, "made/inner", 0777);
    ASSERT_EQ(run_routed(loop, &t, R_MKDIRAT), 0);
    stx = stat_of(loop, dfd, "made/inner");
    ASSERT_TRUE(S_ISDIR(stx.stx_mode));
    ASSERT_EQ(stx.stx_mode & 07777, 0755);
    /* Relative to another directory descriptor. */
    sub = openat(dfd, "made", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(sub);
    gyre_op_mkdirat(&t.op, sub, "second", 0700);
    ASSERT_EQ(run_routed(loop, &t, R_MKDIRAT), 0);
    ASSERT_TRUE(S_ISDIR(stat_of(loop, dfd, "made/second").stx_mode));

    test_close(sub);
    test_close(dfd);
    test_loop_free(loop);
}

#define COPY_SRC 100000u

void test_file_copy_file_range(void)
{
    gyre_loop *loop = test_loop_new();
    unsigned char *src = malloc(COPY_SRC), *dst = malloc(COPY_SRC + 1000);
    struct test_op t = {0};
    uint32_t done = 0, want = 70000;
    int dfd = dir_open(test_tmpdir());
    int in = openat(dfd, "src", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int out = openat(dfd, "dst", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    ASSERT_TRUE(src != NULL && dst != NULL);
    ASSERT_SYS(in);
    ASSERT_SYS(out);
    fill(src, COPY_SRC, 7);
    test_write_bytes(in, (const char *)src, COPY_SRC);

    /* copy_file_range(2) may copy less than asked; the rest follows. */
    while (done < want) {
        int64_t n;

        gyre_op_copy_file_range(&t.op, in, 1000 + done, out, 500 + done, want - done, 0);
        n = run_routed(loop, &t, R_COPY);
        ASSERT_GT(n, 0);
        ASSERT_LE(n, want - done);
        done += (uint32_t)n;
    }
    ASSERT_EQ(done, want);
    ASSERT_EQ(stat_of(loop, dfd, "dst").stx_size, 500 + want);
    ASSERT_EQ(pread(out, dst, COPY_SRC + 1000, 0), 500 + want);
    for (int i = 0; i < 500; i++)
        ASSERT_EQ(dst[i], 0);
    ASSERT_EQ(memcmp(dst + 500, src + 1000, want), 0);
    /* The source is unchanged and neither file position moved. */
    ASSERT_EQ(lseek(in, 0, SEEK_CUR), COPY_SRC);
    ASSERT_EQ(lseek(out, 0, SEEK_CUR), 0);

    /* At the end of the source: 0 bytes. Bad flags: EINVAL. */
    gyre_op_copy_file_range(&t.op, in, COPY_SRC, out, 0, 100, 0);
    ASSERT_EQ(run_routed(loop, &t, R_COPY), 0);
    gyre_op_copy_file_range(&t.op, in, 0, out, 0, 100, 1);
    ASSERT_EQ(run_routed(loop, &t, R_COPY), -EINVAL);

    test_close(in);
    test_close(out);
    test_close(dfd);
    free(src);
    free(dst);
    test_loop_free(loop);
}

/* The start of struct linux_dirent64 (getdents64(2)); the name follows. */
#define DIRENT_NAME_OFF 19

struct seen {
    char name[32];
    int count;
    unsigned char type;
};

void test_file_readdir(void)
{
    enum {
        NFILES = 40,
        NDIRS = 3
    };
    gyre_loop *loop = test_loop_new();
    struct seen seen[NFILES + NDIRS + 2];
    uint64_t dents[64]; /* 512 bytes: several calls are needed */
    struct test_op t = {0};
    char name[32];
    int dfd, fd, calls = 0, n = 0;
    int64_t got;

    dfd = dir_open(test_tmpdir());
    ASSERT_SYS(mkdirat(dfd, "listing", 0700));
    memset(seen, 0, sizeof seen);
    snprintf(seen[n++].name, sizeof seen[0].name, ".");
    snprintf(seen[n++].name, sizeof seen[0].name, "..");
    for (int i = 0; i < NFILES; i++) {
        snprintf(name, sizeof name, "listing/file-%03d", i);
        fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_SYS(fd);
        test_close(fd);
        snprintf(seen[n].name, sizeof seen[0].name, "file-%03d", i);
        seen[n++].type = DT_REG;
    }
    for (int i = 0; i < NDIRS; i++) {
        snprintf(name, sizeof name, "listing/dir-%d", i);
        ASSERT_SYS(mkdirat(dfd, name, 0700));
        snprintf(seen[n].name, sizeof seen[0].name, "dir-%d", i);
        seen[n++].type = DT_DIR;
    }
    seen[0].type = seen[1].type = DT_DIR;
    fd = openat(dfd, "listing", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(fd);

    /* Too small for one record: EINVAL (getdents64(2)). */
    gyre_op_readdir(&t.op, fd, dents, 8);
    ASSERT_EQ(run_routed(loop, &t, R_READDIR), -EINVAL);

    for (;;) {
        const unsigned char *p = (const unsigned char *)dents;
        int64_t at = 0;

        gyre_op_readdir(&t.op, fd, dents, sizeof dents);
        got = run_routed(loop, &t, R_READDIR);
        ASSERT_GE(got, 0);
        ASSERT_LE(got, sizeof dents);
        calls++;
        ASSERT_LT(calls, 1000);
        if (got == 0)
            break;
        while (at < got) {
            uint16_t reclen;
            unsigned char type;
            const char *nm = (const char *)p + at + DIRENT_NAME_OFF;
            int k;

            memcpy(&reclen, p + at + 16, sizeof reclen);
            type = p[at + 18];
            ASSERT_GT(reclen, DIRENT_NAME_OFF);
            ASSERT_LE(at + reclen, got);
            ASSERT_TRUE(memchr(nm, '\0', reclen - DIRENT_NAME_OFF) != NULL);
            for (k = 0; k < n; k++) {
                if (strcmp(seen[k].name, nm) == 0)
                    break;
            }
            if (k == n)
                test_fail(__FILE__, __LINE__, "readdir returned unknown name \"%s\"", nm);
            seen[k].count++;
            if (type != DT_UNKNOWN)
                ASSERT_EQ(type, seen[k].type);
            at += reclen;
        }
        ASSERT_EQ(at, got);
    }
    ASSERT_GT(calls, 2); /* 45 names do not fit in 512 bytes */
    for (int k = 0; k < n; k++) {
        if (seen[k].count != 1)
            test_fail(__FILE__, __LINE__, "\"%s\" seen %d times", seen[k].name, seen[k].count);
    }
    /* At the end it stays at the end. */
    gyre_op_readdir(&t.op, fd, dents, sizeof dents);
    ASSERT_EQ(run_routed(loop, &t, R_READDIR), 0);

    test_close(fd);
    test_close(dfd);
    test_loop_free(loop);
}
