/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* cp.c: gyre-cp, a file and tree copier on gyre's operations.
 *
 *   gyre-cp [--backend auto|uring|epoll|poll|select] [--no-copy-range] SRC DST
 *
 * Copies SRC (a regular file, a symlink or a directory tree) to DST, or into
 * DST when DST is an existing directory, as `cp -r` does. Directories are
 * made and symlinks recreated (not followed) while the tree is walked; the
 * regular files found are the jobs of the copy engine.
 *
 * The engine keeps COPY_SLOTS chunks of COPY_CHUNK bytes in flight, each a
 * slot with its own buffer: a chunk is one copy_file_range op (the kernel
 * copies, or shares extents on reflink file systems), or, where that fails
 * with EXDEV, EINVAL, EOPNOTSUPP or ENOSYS (or with --no-copy-range), a
 * gyre_op_read followed by a gyre_op_write at the chunk's offset. Short
 * results go on from where they stopped. Chunks of one file complete in any
 * order; a file is closed once its last chunk is written. At most one file
 * beyond those with chunks in flight is open, so a tree of a million files
 * needs COPY_SLOTS + 1 descriptor pairs.
 *
 * At the end every copied file is statx'ed (gyre_op_statx, again
 * COPY_SLOTS in flight) and its size compared with the source's. Progress
 * goes to stderr (a line rewritten in place on a terminal, one line a second
 * otherwise). Exit status 0 when everything was copied and verified, 1 with
 * a message per problem otherwise, 2 for a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gyre.h>

#define COPY_SLOTS 32
#define COPY_CHUNK (256u * 1024)
#define PROGRESS_NS (250ull * 1000 * 1000)

typedef struct file_job {
    char *src, *dst;
    uint64_t size;
    uint32_t mode;
    int sfd, dfd;
    uint64_t next_off; /* the next chunk to hand out */
    uint32_t inflight; /* chunks handed out and not yet written */
} file_job;

enum {
    PHASE_RANGE, /* copy_file_range */
    PHASE_READ,
    PHASE_WRITE,
    PHASE_STATX,
};

typedef struct slot {
    gyre_op op;
    file_job *f;
    uint64_t off;
    uint32_t len, done;
    int phase;
    char *buf;
    struct statx stx;
} slot;

static gyre_loop *loop;
static slot slots[COPY_SLOTS];
static file_job *jobs;
static size_t n_jobs, cap_jobs, next_job, n_finished, next_verify, n_verified;
static uint64_t total_bytes, copied_bytes;
static int use_range = 1, failed, verifying, tty;
static gyre_timer progress_timer;
static uint64_t last_line_ns;
static dev_t top_dev;
static ino_t top_ino;
static int have_top;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    failed = 1;
    if (tty)
        fputc('\n', stderr);
    fputs("gyre-cp: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);

    if (!p) {
        fail("out of memory");
        exit(1);
    }
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static char *dup_str(const char *s)
{
    char *p = strdup(s);

    if (!p) {
        fail("out of memory");
        exit(1);
    }
    return p;
}

/* --- the walk: directories and symlinks now, regular files as jobs --- */

static void add_job(char *src, char *dst, const struct stat *st)
{
    if (n_jobs == cap_jobs) {
        size_t cap = cap_jobs ? 2 * cap_jobs : 64;
        file_job *p = realloc(jobs, cap * sizeof *p);

        if (!p) {
            fail("out of memory");
            exit(1);
        }
        jobs = p;
        cap_jobs = cap;
    }
    jobs[n_jobs++] = (file_job){.src = src,
                                .dst = dst,
                                .size = (uint64_t)st->st_size,
                                .mode = st->st_mode & 07777,
                                .sfd = -1,
                                .dfd = -1};
    total_bytes += (uint64_t)st->st_size;
}

/* Takes ownership of src and dst. */
static void walk(char *src, char *dst)
{
    struct stat st, dst_st;
    struct dirent *e;
    char target[PATH_MAX];
    ssize_t n;
    DIR *d;

    if (lstat(src, &st) != 0) {
        fail("%s: %s", src, strerror(errno));
    } else if (S_ISREG(st.st_mode)) {
        add_job(src, dst, &st);
        return;
    } else if (S_ISLNK(st.st_mode)) {
        n = readlink(src, target, sizeof target - 1);
        if (n < 0) {
            fail("%s: readlink: %s", src, strerror(errno));
        } else {
            target[n] = '\0';
            if (symlink(target, dst) != 0)
                fail("%s: symlink: %s", dst, strerror(errno));
        }
    } else if (S_ISDIR(st.st_mode)) {
        /* Owner rwx while we fill it; the real mode is not worth a second
         * pass for an example, so it is the source's plus u+rwx. */
        if (mkdir(dst, (st.st_mode & 07777) | S_IRWXU) != 0 &&
            (errno != EEXIST || stat(dst, &dst_st) != 0 || !S_ISDIR(dst_st.st_mode))) {
            fail("%s: mkdir: %s", dst, strerror(errno));
        } else if (have_top && st.st_dev == top_dev && st.st_ino == top_ino) {
            /* DST lies inside SRC: its own copy is not copied again. */
        } else if (!(d = opendir(src))) {
            fail("%s: %s", src, strerror(errno));
        } else {
            if (!have_top && stat(dst, &dst_st) == 0) {
                top_dev = dst_st.st_dev;
                top_ino = dst_st.st_ino;
                have_top = 1;
            }
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                walk(join(src, e->d_name), join(dst, e->d_name));
            }
            closedir(d);
        }
    } else {
        fail("%s: not a regular file, directory or symlink; skipped", src);
    }
    free(src);
    free(dst);
}

/* --- the copy engine --- */

static void on_slot(gyre_op *op);
static void begin_verify(void);

static void progress(int final)
{
    uint64_t now = gyre_now(loop);

    if (!final && !tty && now - last_line_ns < 1000ull * 1000 * 1000)
        return;
    last_line_ns = now;
    fprintf(stderr, "%sgyre-cp: %.1f/%.1f MiB, %zu/%zu files%s", tty ? "\r" : "",
            (double)copied_bytes / 1048576.0, (double)total_bytes / 1048576.0, n_finished, n_jobs,
            tty && !final ? "" : "\n");
}

static void on_progress(gyre_timer *t)
{
    (void)t;
    progress(0);
}

static void submit(slot *s)
{
    int rc;

    switch (s->phase) {
    case PHASE_RANGE:
        gyre_op_copy_file_range(&s->op, s->f->sfd, s->off + s->done, s->f->dfd, s->off + s->done,
                                s->len - s->done, 0);
        break;
    case PHASE_READ:
        gyre_op_read(&s->op, s->f->sfd, s->buf + s->done, s->len - s->done, s->off + s->done);
        break;
    case PHASE_WRITE:
        gyre_op_write(&s->op, s->f->dfd, s->buf + s->done, s->len - s->done, s->off + s->done);
        break;
    default:
        gyre_op_statx(&s->op, AT_FDCWD, s->f->dst, AT_SYMLINK_NOFOLLOW, STATX_SIZE, &s->stx);
        break;
    }
    rc = gyre_submit(loop, &s->op, on_slot);
    if (rc < 0) {
        fail("%s: submit: %s", s->f->dst, gyre_strerror(rc));
        s->f = NULL;
    }
}

static void finish_file(file_job *f)
{
    if (f->dfd >= 0 && fchmod(f->dfd, f->mode) != 0)
        fail("%s: chmod: %s", f->dst, strerror(errno));
    if (f->sfd >= 0)
        close(f->sfd);
    if (f->dfd >= 0 && close(f->dfd) != 0)
        fail("%s: close: %s", f->dst, strerror(errno));
    f->sfd = f->dfd = -1;
    n_finished++;
}

/* Opens the next job's files; empty files are done at once. Returns the job
 * or NULL when none is left. */
static file_job *open_next(void)
{
    while (next_job < n_jobs && !failed) {
        file_job *f = &jobs[next_job];

        f->sfd = open(f->src, O_RDONLY | O_CLOEXEC);
        if (f->sfd < 0) {
            fail("%s: %s", f->src, strerror(errno));
            return NULL;
        }
        f->dfd = open(f->dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (f->dfd < 0) {
            fail("%s: %s", f->dst, strerror(errno));
            close(f->sfd);
            f->sfd = -1;
            return NULL;
        }
        if (f->size > 0)
            return f;
        finish_file(f);
        next_job++;
    }
    return NULL;
}

/* Gives slot s the next chunk, or starts verifying once nothing is left. */
static void schedule(slot *s)
{
    file_job *f = next_job < n_jobs ? &jobs[next_job] : NULL;

    s->f = NULL;
    if (failed)
        return;
    if (f && f->sfd < 0)
        f = open_next();
    if (!f) {
        if (n_finished == n_jobs && !failed)
            begin_verify();
        return;
    }
    s->f = f;
    s->off = f->next_off;
    s->len = f->size - f->next_off < COPY_CHUNK ? (uint32_t)(f->size - f->next_off) : COPY_CHUNK;
    s->done = 0;
    s->phase = use_range ? PHASE_RANGE : PHASE_READ;
    f->next_off += s->len;
    f->inflight++;
    if (f->next_off == f->size)
        next_job++; /* every chunk is out; the next slot opens the next file */
    submit(s);
}

static void start_verify(slot *s)
{
    if (next_verify == n_jobs || failed) {
        s->f = NULL;
        return;
    }
    s->f = &jobs[next_verify++];
    s->phase = PHASE_STATX;
    submit(s);
}

/* Every file is written: each idle slot (f == NULL) starts a statx. */
static void begin_verify(void)
{
    size_t k;

    if (verifying)
        return;
    verifying = 1;
    progress(1);
    for (k = 0; k < COPY_SLOTS; k++)
        if (!slots[k].f)
            start_verify(&slots[k]);
}

static void chunk_done(slot *s)
{
    file_job *f = s->f;

    copied_bytes += s->len;
    if (--f->inflight == 0 && f->next_off == f->size)
        finish_file(f);
    schedule(s);
}

static void on_slot(gyre_op *op)
{
    slot *s = op->data;
    file_job *f = s->f;
    int64_t r = op->result;

    if (s->phase == PHASE_STATX) {
        if (r < 0)
            fail("%s: statx: %s", f->dst, gyre_strerror((int)r));
        else if (s->stx.stx_size != f->size)
            fail("%s: %llu bytes, the source has %llu", f->dst, (unsigned long long)s->stx.stx_size,
                 (unsigned long long)f->size);
        else
            n_verified++;
        start_verify(s);
        return;
    }
    if (r < 0 && s->phase == PHASE_RANGE &&
        (r == -EXDEV || r == -EINVAL || r == -EOPNOTSUPP || r == -ENOSYS)) {
        /* This pair of file systems (or this kernel) cannot: the rest of the
         * run goes through the buffers. */
        use_range = 0;
        s->phase = PHASE_READ;
        submit(s);
        return;
    }
    if (r <= 0) {
        if (r == 0)
            fail("%s: ended early (changed while copying?)", f->src);
        else
            fail("%s -> %s: %s", f->src, f->dst, gyre_strerror((int)r));
        if (--f->inflight == 0) {
            /* Its descriptors close here; the copy has failed anyway. */
            f->next_off = f->size;
            finish_file(f);
        }
        s->f = NULL;
        return;
    }
    s->done += (uint32_t)r;
    if (s->done < s->len) {
        submit(s); /* short: the rest */
        return;
    }
    if (s->phase == PHASE_READ) {
        s->phase = PHASE_WRITE;
        s->done = 0;
        submit(s);
        return;
    }
    chunk_done(s);
}

/* cp's rule: into DST when it is a directory, else as DST. */
static char *target_path(const char *src, const char *dst)
{
    struct stat st;
    const char *base;
    size_t len = strlen(src);
    char *trimmed, *p;

    if (stat(dst, &st) != 0 || !S_ISDIR(st.st_mode))
        return dup_str(dst);
    trimmed = dup_str(src);
    while (len > 1 && trimmed[len - 1] == '/')
        trimmed[--len] = '\0';
    base = strrchr(trimmed, '/');
    base = base ? base + 1 : trimmed;
    p = join(dst, base);
    free(trimmed);
    return p;
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-cp [--backend auto|uring|epoll|poll|select] [--no-copy-range] "
                    "SRC DST\n");
    return 2;
}

int main(int argc, char **argv)
{
    gyre_loop_opts opts = {0};
    const char *src = NULL, *dst = NULL;
    char *bufs;
    int i, rc;
    size_t k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            opts.backend = argv[++i];
        else if (strcmp(argv[i], "--no-copy-range") == 0)
            use_range = 0;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage();
        else if (!src)
            src = argv[i];
        else if (!dst)
            dst = argv[i];
        else
            return usage();
    }
    if (!src || !dst)
        return usage();
    tty = isatty(STDERR_FILENO);
    rc = gyre_loop_new(&loop, &opts);
    if (rc < 0) {
        fprintf(stderr, "gyre-cp: gyre_loop_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    walk(dup_str(src), target_path(src, dst));

    bufs = aligned_alloc(4096, (size_t)COPY_SLOTS * COPY_CHUNK);
    if (!bufs) {
        fail("out of memory");
        return 1;
    }
    gyre_timer_init(loop, &progress_timer);
    if (gyre_timer_start(&progress_timer, on_progress, PROGRESS_NS, PROGRESS_NS) == 0)
        gyre_handle_unref(&progress_timer.base);
    for (k = 0; k < COPY_SLOTS; k++) {
        slots[k].op.data = &slots[k];
        slots[k].buf = bufs + k * COPY_CHUNK;
    }
    for (k = 0; k < COPY_SLOTS && !verifying; k++)
        schedule(&slots[k]);
    rc = gyre_loop_run(loop, GYRE_RUN_DEFAULT);
    gyre_timer_stop(&progress_timer);
    if (rc < 0)
        fail("gyre_loop_run: %s", gyre_strerror(rc));
    /* Jobs a failure left unstarted or half-done. */
    for (k = 0; k < n_jobs; k++) {
        if (jobs[k].sfd >= 0)
            close(jobs[k].sfd);
        if (jobs[k].dfd >= 0)
            close(jobs[k].dfd);
        free(jobs[k].src);
        free(jobs[k].dst);
    }
    free(jobs);
    free(bufs);
    if ((rc = gyre_loop_free(loop)) < 0)
        fail("gyre_loop_free: %s", gyre_strerror(rc));
    if (!failed && n_verified != n_jobs)
        fail("verified %zu of %zu files", n_verified, n_jobs);
    if (failed)
        return 1;
    fprintf(stderr, "gyre-cp: copied and verified %zu files, %llu bytes\n", n_jobs,
            (unsigned long long)total_bytes);
    return 0;
}
