"""A deployment's thread runs at a raised priority when allowed, and never fails when not."""
import multiprocessing
import os

from deployments.engine import priority

NOBODY = 65534


def test_the_block_runs_raised_and_the_thread_gets_its_priority_back():
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with priority.raised() as allowed:
        inside = os.getpriority(os.PRIO_PROCESS, 0)

    assert allowed is (os.geteuid() == 0)
    assert inside == (priority.RAISED_NICE if allowed else before)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def _raise_as_nobody(answer) -> None:
    if os.geteuid() == 0:
        os.setuid(NOBODY)  # no CAP_SYS_NICE from here on
    with priority.raised() as allowed:
        answer.send((allowed, os.getpriority(os.PRIO_PROCESS, 0)))


def test_without_the_privilege_the_block_runs_unchanged():
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_raise_as_nobody, args=(sender,))
    child.start()
    try:
        assert receiver.poll(10), "the child process did not answer"
        allowed, nice = receiver.recv()
    finally:
        child.join(10)

    assert child.exitcode == 0
    assert (allowed, nice) == (False, os.getpriority(os.PRIO_PROCESS, 0))
