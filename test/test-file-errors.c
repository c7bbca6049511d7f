/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-file-errors.c: the error paths of every file and path operation on
 * every file engine -- EBADF (a descriptor that is not open), EISDIR (a
 * directory where a file is needed), ENOENT (a missing name or parent),
 * EEXIST (a name that is taken), and the few others a file operation has of
 * its own (ENOTDIR, ENOTEMPTY, EINVAL). Each op completes exactly once with
 * the syscall's own -errno, from the loop, never inside gyre_submit().
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

static int64_t run(gyre_loop *loop, struct test_op *t)
{
    return test_op_run(loop, t);
}

static int dir_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    ASSERT_SYS(fd);
    return fd;
}

void test_file_err_ebadf(void)
{
    gyre_loop *loop = test_loop_new();
    int bad = test_bad_fd();
    struct test_op t = {0};
    /* Initialised: the writev below hands it to the kernel, which memcheck checks before
     * the kernel refuses the fd. */
    char buf[64] = {0}, path[4096];
    struct iovec iov = {buf, sizeof buf};
    uint64_t dents[64];
    int fd;

    gyre_op_read(&t.op, bad, buf, sizeof buf, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_write(&t.op, bad, "x", 1, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_readv(&t.op, bad, &iov, 1, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_writev(&t.op, bad, &iov, 1, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_fsync(&t.op, bad, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_fsync(&t.op, bad, 1);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_ftruncate(&t.op, bad, 10);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_fallocate(&t.op, bad, 0, 0, 4096);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_readdir(&t.op, bad, dents, sizeof dents);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_statx(&t.op, bad, "", AT_EMPTY_PATH, STATX_SIZE, &(struct statx){0});
    ASSERT_EQ(run(loop, &t), -EBADF);

    /* A descriptor that was open and is closed now: the same. */
    test_tmppath(path, sizeof path, "closed");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "data", 4);
    gyre_op_read(&t.op, fd, buf, 4, 0);
    ASSERT_EQ(run(loop, &t), 4);
    gyre_op_close(&t.op, fd);
    ASSERT_EQ(run(loop, &t), 0);
    gyre_op_read(&t.op, fd, buf, 4, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_write(&t.op, fd, "x", 1, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_fsync(&t.op, fd, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);

    /* copy_file_range with either end not open. */
    fd = open(path, O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    gyre_op_copy_file_range(&t.op, bad, 0, fd, 0, 4, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    gyre_op_copy_file_range(&t.op, fd, 0, bad, 0, 4, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    /* Writing through a read-only descriptor is EBADF as well. */
    test_close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(fd);
    gyre_op_write(&t.op, fd, "x", 1, 0);
    ASSERT_EQ(run(loop, &t), -EBADF);
    test_close(fd);

    test_loop_free(loop);
}

void test_file_err_eisdir(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[64], path[4096];
    struct iovec iov = {buf, sizeof buf};
    int dfd = dir_open(test_tmpdir());

    gyre_op_read(&t.op, dfd, buf, sizeof buf, 0);
    ASSERT_EQ(run(loop, &t), -EISDIR);
    gyre_op_readv(&t.op, dfd, &iov, 1, 0);
    ASSERT_EQ(run(loop, &t), -EISDIR);
    /* A directory cannot be opened for writing. */
    gyre_op_openat(&t.op, AT_FDCWD, test_tmpdir(), O_WRONLY, 0);
    ASSERT_EQ(run(loop, &t), -EISDIR);
    gyre_op_openat(&t.op, dfd, ".", O_RDWR, 0);
    ASSERT_EQ(run(loop, &t), -EISDIR);
    /* unlink without AT_REMOVEDIR on a directory. */
    test_tmppath(path, sizeof path, "sub");
    ASSERT_SYS(mkdir(path, 0700));
    gyre_op_unlinkat(&t.op, dfd, "sub", 0);
    ASSERT_EQ(run(loop, &t), -EISDIR);
    ASSERT_SYS(access(path, F_OK));
    /* ... and the other way round: AT_REMOVEDIR on a file, readdir of a file. */
    {
        int fd = openat(dfd, "file", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        uint64_t dents[64];

        ASSERT_SYS(fd);
        gyre_op_unlinkat(&t.op, dfd, "file", AT_REMOVEDIR);
        ASSERT_EQ(run(loop, &t), -ENOTDIR);
        gyre_op_readdir(&t.op, fd, dents, sizeof dents);
        ASSERT_EQ(run(loop, &t), -ENOTDIR);
        test_close(fd);
    }
    /* A directory that is not empty stays. */
    ASSERT_SYS(mkdir(strcat(path, "/inner"), 0700));
    gyre_op_unlinkat(&t.op, dfd, "sub", AT_REMOVEDIR);
    ASSERT_EQ(run(loop, &t), -ENOTEMPTY);

    test_close(dfd);
    test_loop_free(loop);
}

void test_file_err_enoent(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct statx stx;
    char path[4096];
    int dfd = dir_open(test_tmpdir());

    test_tmppath(path, sizeof path, "missing");
    gyre_op_openat(&t.op, AT_FDCWD, path, O_RDONLY, 0);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_openat(&t.op, dfd, "missing", O_RDWR, 0);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_openat(&t.op, dfd, "nodir/new", O_RDWR | O_CREAT, 0600);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_unlinkat(&t.op, dfd, "missing", 0);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_unlinkat(&t.op, dfd, "missing", AT_REMOVEDIR);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_statx(&t.op, dfd, "missing", 0, STATX_BASIC_STATS, &stx);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_statx(&t.op, AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_renameat(&t.op, dfd, "missing", dfd, "other", 0);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    gyre_op_mkdirat(&t.op, dfd, "nodir/sub", 0700);
    ASSERT_EQ(run(loop, &t), -ENOENT);
    /* None of them made anything. */
    ASSERT_EQ(faccessat(dfd, "missing", F_OK, 0), -1);
    ASSERT_EQ(faccessat(dfd, "other", F_OK, 0), -1);
    ASSERT_EQ(faccessat(dfd, "nodir", F_OK, 0), -1);

    test_close(dfd);
    test_loop_free(loop);
}

void test_file_err_eexist(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[8];
    int dfd = dir_open(test_tmpdir());
    int fd = openat(dfd, "taken", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    ASSERT_SYS(fd);
    test_write_bytes(fd, "keep", 4);
    ASSERT_SYS(mkdirat(dfd, "dir", 0700));

    gyre_op_mkdirat(&t.op, dfd, "dir", 0700);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    gyre_op_mkdirat(&t.op, dfd, "taken", 0700);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    gyre_op_openat(&t.op, dfd, "taken", O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    gyre_op_openat(&t.op, dfd, "dir", O_RDONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    ASSERT_SYS(mkdirat(dfd, "other", 0700));
    gyre_op_renameat(&t.op, dfd, "dir", dfd, "taken", RENAME_NOREPLACE);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    gyre_op_renameat(&t.op, dfd, "dir", dfd, "other", RENAME_NOREPLACE);
    ASSERT_EQ(run(loop, &t), -EEXIST);
    /* Nothing was replaced or truncated. */
    ASSERT_EQ(pread(fd, buf, sizeof buf, 0), 4);
    ASSERT_EQ(memcmp(buf, "keep", 4), 0);
    ASSERT_SYS(faccessat(dfd, "dir", F_OK, 0));

    test_close(fd);
    test_close(dfd);
    test_loop_free(loop);
}
