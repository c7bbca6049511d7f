/* test-op-order.c: the order of data ops on one fd (rule 5).
 *
 * Reads at the current position (read, readv, recv) on one fd take the bytes
 * in the order they were submitted, however many wait at once, and writes put
 * theirs in submission order, on every backend. On io_uring that is gyre's
 * doing, not the kernel's: requests the kernel runs concurrently on one
 * socket are not ordered (two recvs waiting in poll may be woken either way
 * round; a send that found the buffer full is retried from task work that an
 * enter runs after it has issued the sends submitted since), and a write
 * gyre emulates may overtake one in the ring.
 *
 * Each test makes the situation that reordered them and then checks the
 * bytes; results are counted, never timed, so they also hold under
 * GYRE_FAULTS.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

/* A write and a writev on one socket, submitted together: the writev once
 * went by the emulation (native WRITEV on a socket raises SIGPIPE), which
 * tried it at once, while the write went to the kernel only at the next
 * enter. */
void test_op_order_write_writev(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t[3];
    struct iovec iov[2] = {{(void *)"bb", 2}, {(void *)"bb", 2}};
    char got[12];
    int sp[2];

    memset(t, 0, sizeof t);
    test_socketpair(sp);
    gyre_op_write(&t[0].op, sp[0], "aaaa", 4, GYRE_OFF_CUR);
    test_op_submit(loop, &t[0]);
    gyre_op_writev(&t[1].op, sp[0], iov, 2, GYRE_OFF_CUR);
    test_op_submit(loop, &t[1]);
    gyre_op_send(&t[2].op, sp[0], "cccc", 4, 0);
    test_op_submit(loop, &t[2]);
    for (int i = 0; i < 3; i++)
        test_run_until(loop, &t[i].calls, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(t[i].result, 4);
    test_read_bytes(sp[1], got, sizeof got);
    ASSERT_EQ(memcmp(got, "aaaabbbbcccc", 12), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}
