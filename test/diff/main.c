/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* main.c: gyre-diff, the differential test's command line.
 *
 *   gyre-diff --ref epoll --cmp uring --seeds 0-199
 *   gyre-diff --ref epoll/pool --cmp epoll/linuxaio --profile files --seeds 0-199
 *   gyre-diff --ref epoll --seed 17 --dump        (print the program)
 *   GYRE_FAULTS=... gyre-diff --ref epoll --weak --seeds 0-19
 *
 * Each seed's program runs twice on the reference (BACKEND or
 * BACKEND/ENGINE), which must agree with itself (a difference there is a
 * generator bug: an outcome that depends on timing), then once on the
 * compared one, which must agree with the reference under the allowed-
 * difference table (compare.c). Every run also checks the invariants
 * (exec.c). --weak (for GYRE_FAULTS with faults that change results) checks
 * only the invariants. Exit status 0 if every seed passed, 1 otherwise;
 * each failure prints the seed and the command that replays it.
 */
#include "diff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gyre.h"

struct target {
    char backend[16];
    char engine[16];
    int has_engine;
};

static int parse_target(const char *s, struct target *t)
{
    const char *slash = strchr(s, '/');

    memset(t, 0, sizeof *t);
    if (slash == NULL) {
        snprintf(t->backend, sizeof t->backend, "%s", s);
        return 0;
    }
    if ((size_t)(slash - s) >= sizeof t->backend)
        return -1;
    memcpy(t->backend, s, (size_t)(slash - s));
    snprintf(t->engine, sizeof t->engine, "%s", slash + 1);
    t->has_engine = 1;
    return 0;
}

static void env_of(const struct target *t, struct diff_env *env, int weak, uint32_t hang_ms)
{
    memset(env, 0, sizeof *env);
    env->backend = t->backend;
    env->file_engine = t->has_engine ? t->engine : NULL;
    env->weak = weak;
    env->hang_ms = hang_ms;
}

static void usage(void)
{
    fprintf(stderr, "usage: gyre-diff --ref B[/E] [--cmp B[/E]] (--seed N | --seeds A-B)\n"
                    "       [--profile auto|big|files|small] [--weak] [--keep-going]\n"
                    "       [--hang-ms N] [--ring N] [--without ACTION]... [--dump]\n"
                    "       [--list-allowed]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct target ref, cmp;
    int have_ref = 0, have_cmp = 0, weak = 0, keep_going = 0, dump = 0, hung = 0;
    unsigned long long first = 0, last = 0;
    uint32_t hang_ms = 0;
    struct diff_gen_opts gopts;
    const char *profile = "auto";
    int failures = 0, ring = -1;
    char without[256] = "";
    unsigned long long seeds = 0;
    char msg[4096];
    struct timespec t0, t1;

    memset(&gopts, 0, sizeof gopts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--ref") == 0 && i + 1 < argc) {
            if (parse_target(argv[++i], &ref) < 0)
                usage();
            have_ref = 1;
        } else if (strcmp(a, "--cmp") == 0 && i + 1 < argc) {
            if (parse_target(argv[++i], &cmp) < 0)
                usage();
            have_cmp = 1;
        } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            first = last = strtoull(argv[++i], NULL, 0);
        } else if (strcmp(a, "--seeds") == 0 && i + 1 < argc) {
            if (sscanf(argv[++i], "%llu-%llu", &first, &last) != 2 || last < first)
                usage();
        } else if (strcmp(a, "--profile") == 0 && i + 1 < argc) {
            profile = argv[++i];
        } else if (strcmp(a, "--weak") == 0) {
            weak = 1;
        } else if (strcmp(a, "--keep-going") == 0) {
            keep_going = 1;
        } else if (strcmp(a, "--dump") == 0) {
            dump = 1;
        } else if (strcmp(a, "--without") == 0 && i + 1 < argc) {
            int act = diff_gen_action(argv[++i]);

            if (act < 0)
                usage();
            gopts.without |= 1u << act;
            snprintf(without + strlen(without), sizeof without - strlen(without), " --without %s",
                     argv[i]);
        } else if (strcmp(a, "--ring") == 0 && i + 1 < argc) {
            ring = (int)strtol(argv[++i], NULL, 0);
        } else if (strcmp(a, "--hang-ms") == 0 && i + 1 < argc) {
            hang_ms = (uint32_t)strtoul(argv[++i], NULL, 0);
        } else if (strcmp(a, "--list-allowed") == 0) {
            for (size_t k = 0; k < diff_allowed_count; k++)
                printf("%s: %s\n    allowed by: %s\n", diff_allowed_table[k].id,
                       diff_allowed_table[k].what, diff_allowed_table[k].rule);
            return 0;
        } else {
            usage();
        }
    }
    if (!have_ref)
        usage();
    if (strcmp(profile, "big") == 0)
        gopts.flags = DP_BIG;
    else if (strcmp(profile, "files") == 0)
        gopts.flags = DP_FILES;
    else if (strcmp(profile, "small") == 0)
        gopts.flags = 0x80000000u; /* no profile bit: never big */
    else if (strcmp(profile, "auto") != 0)
        usage();

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long long seed = first; seed <= last; seed++) {
        struct diff_prog prog;
        struct diff_src src;
        struct diff_env env;
        struct diff_outcome a, a2, b;
        int bad = 0;

        seeds++;
        memset(&prog, 0, sizeof prog);
        prog.seed = seed;
        diff_src_seed(&src, seed);
        if (diff_gen(&prog, &src, &gopts) != 0) {
            fprintf(stderr, "seed %llu: out of memory generating\n", seed);
            return 1;
        }
        if (ring >= 0)
            prog.ring_entries = (uint32_t)ring;
        if (dump)
            diff_prog_dump(&prog, stdout);
        env_of(&ref, &env, weak, hang_ms);
        if (diff_run(&prog, &env, &a) != 0) {
            fprintf(stderr, "gyre-diff: cannot run on %s%s%s\n", ref.backend,
                    ref.has_engine ? "/" : "", ref.engine);
            return 1;
        }
        hung |= a.hang;
        if (!weak && !a.hang && !a.failed) {
            diff_run(&prog, &env, &a2);
            hung |= a2.hang;
            if (diff_compare(&prog, &a, &a2, msg, sizeof msg) != 0) {
                printf("seed %llu: SELF-CHECK FAILED on %s/%s (a generator bug, or gyre "
                       "differs from itself):\n%s",
                       seed, a.backend, a.engine, msg);
                bad = 1;
            }
            diff_outcome_free(&a2);
        } else if (a.hang || a.failed) {
            printf("seed %llu: %s/%s: %s\n", seed, a.backend, a.engine, a.why);
            bad = 1;
        }
        if (!bad && have_cmp) {
            env_of(&cmp, &env, weak, hang_ms);
            if (diff_run(&prog, &env, &b) != 0) {
                fprintf(stderr, "gyre-diff: cannot run on %s%s%s\n", cmp.backend,
                        cmp.has_engine ? "/" : "", cmp.engine);
                diff_outcome_free(&a);
                diff_prog_free(&prog);
                return 1;
            }
            hung |= b.hang;
            if (weak ? (b.hang || b.failed) : diff_compare(&prog, &a, &b, msg, sizeof msg) != 0) {
                if (weak)
                    snprintf(msg, sizeof msg, "  %s/%s: %s\n", b.backend, b.engine, b.why);
                printf("seed %llu: %s/%s differs from %s/%s:\n%s", seed, b.backend, b.engine,
                       a.backend, a.engine, msg);
                bad = 1;
            }
            diff_outcome_free(&b);
        }
        diff_outcome_free(&a);
        if (bad) {
            failures++;
            printf("  replay: %s --ref %s%s%s%s%s%s%s --seed %llu --profile %s%s%s --dump\n",
                   argv[0], ref.backend, ref.has_engine ? "/" : "", ref.engine,
                   have_cmp ? " --cmp " : "", have_cmp ? cmp.backend : "",
                   have_cmp && cmp.has_engine ? "/" : "", have_cmp ? cmp.engine : "", seed, profile,
                   weak ? " --weak" : "", without);
            fflush(stdout);
        }
        diff_prog_free(&prog);
        if (bad && !keep_going)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("gyre-diff: %llu seed(s), %d failed, %.1f s\n", seeds, failures,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fflush(stdout);
    if (hung) {
        /* A hung run's loop could not be freed; leave without a leak report
         * that would bury the finding. */
        _exit(1);
    }
    diff_exec_cleanup();
    return failures ? 1 : 0;
}
