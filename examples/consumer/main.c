/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* consumer: the smallest program that uses an installed gyre, built by CI both with
 * pkg-config and with CMake's find_package(gyre) to prove the installed package works.
 *
 * A one-shot timer fires after 1 ms; its callback prints "consumer ok" and the version of
 * the library loaded at run time, and the loop then returns because nothing is active.
 */
#include <gyre.h>
#include <stdio.h>

static int fired;

static void on_timer(gyre_timer *t)
{
    (void)t;
    fired = 1;
    printf("consumer ok: gyre %s (headers %s)\n", gyre_version_string(), GYRE_VERSION_STRING);
}

int main(void)
{
    gyre_loop *loop;
    gyre_timer timer;
    int rc;

    rc = gyre_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "consumer: gyre_loop_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    rc = gyre_timer_init(loop, &timer);
    if (rc == 0)
        rc = gyre_timer_start(&timer, on_timer, 1000000, 0);
    if (rc == 0)
        rc = gyre_loop_run(loop, GYRE_RUN_DEFAULT);
    if (rc < 0)
        fprintf(stderr, "consumer: %s\n", gyre_strerror(rc));
    if (gyre_loop_free(loop) < 0 || rc < 0 || !fired)
        return 1;
    return 0;
}
