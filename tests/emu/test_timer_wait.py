"""A thread checkpointed inside a timer wait wakes after the remaining time."""

from genode_cr.v1 import checkpoint_pb2 as pb

from .conftest import counts

PERIOD_US = 200_000


def test_blocked_timer_wait_resumes_with_remaining_time(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(1.13)
    last_tick = counts(a)[-1][2]
    checkpoint = a.cr.checkpoint("counter", freeze=True)
    thread = checkpoint.manifest.cpu.threads[0]
    assert thread.blocking == pb.BLOCKING_IRQ_RECEIVE, "the counter should be blocked in its timer wait"
    timer = checkpoint.manifest.timer_sessions[0]
    remaining = timer.remaining_us
    assert timer.armed and 0 < remaining < PERIOD_US
    assert abs((a.kernel.now_us - last_tick) + remaining - PERIOD_US) < 1000

    b.run(5.0)
    restored_at = b.kernel.now_us
    b.cr.restore(checkpoint)
    b.run(1.0)
    first_wake = counts(b)[0][2] - restored_at
    assert abs(first_wake - remaining) < 1000, (first_wake, remaining)
    assert first_wake < PERIOD_US / 2, "woke after the full interval, not the remainder"
    # Later wakes follow the period again.
    gaps = [t2 - t1 for (_, _, t1), (_, _, t2) in zip(counts(b), counts(b)[1:])]
    assert gaps and all(abs(g - PERIOD_US) < 1000 for g in gaps), gaps
