"""SIGTERM at the default timings (wait_time_seconds 20, shutdown_timeout 25): an idle process
exits at once although its fetchers sit in a 20 s long poll; a busy one exits 0 within ECS's
30 s stopTimeout with its writes finished, and nothing is lost; and during an SQS brownout a
process still exits within its shutdown_timeout."""

from __future__ import annotations

import pytest

from ecswatch.dev.simulate import generate
from tests.conftest import Stack, wait_for
from tests.integration.daemon_process import DaemonProcess

SHUTDOWN_TIMEOUT = 4


def in_long_poll(stack: Stack) -> bool:
    """A ReceiveMessage reached the emulator: with an empty queue it now waits 20 s."""
    return stack.emulator.injector.requests["AmazonSQS.ReceiveMessage"] >= 1


def default_timings(stack: Stack) -> dict[str, str]:
    env = stack.daemon_environment(ECSWATCH_SQS_WAIT_TIME_SECONDS="20", ECSWATCH_WORKERS_COUNT="2")
    env.pop("ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT", None)
    return env


def test_idle_sigterm_does_not_wait_for_the_long_poll(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """An idle replica in a 20 s long poll exits 0 well before the poll would return."""
    proc = DaemonProcess(default_timings(stack))
    processes.append(proc)
    wait_for(lambda: in_long_poll(stack), timeout=30)
    code, seconds = proc.terminate()
    assert code == 0, proc.stderr_text()[-2000:]
    assert seconds < 10  # joining the long poll would take up to 20 s


@pytest.mark.slow
def test_busy_sigterm_finishes_the_writes_in_hand_and_exits_0_inside_the_stop_timeout(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """Writes in hand finish, prefetched messages go back, fetchers' polls are cut: exit 0."""
    stack.emulator.faults.stall_share = 1.0
    stack.emulator.faults.stall_seconds = 3.0
    stream = generate(tasks=3, copies=1, seed=21, container_instances=0)
    # A 10 s visibility instead of the default 60 s, so what the cut-short poll took comes back
    # sooner below; the timings under test (the 20 s poll, the 25 s shutdown timeout) are kept.
    proc = DaemonProcess({**default_timings(stack), "ECSWATCH_SQS_VISIBILITY_TIMEOUT": "10"})
    processes.append(proc)
    wait_for(lambda: in_long_poll(stack), timeout=30)
    stack.send(*stream.bodies())
    wait_for(lambda: proc.metric("ecswatch_messages_received_total") >= 1, timeout=20)
    code, seconds = proc.terminate(timeout=40)
    assert code == 0, proc.stderr_text()[-2000:]
    assert seconds < 30
    assert proc.events("ecswatch_stopped")[0]["drained"] is True
    stack.emulator.faults.reset()
    # Whatever it did not finish it gave back, visible once its cut-short long poll has ended on
    # SQS's side (up to 22 s): a second replica completes the stream. A message that poll was
    # about to return stays invisible for the 10 s visibility it was received with
    # (docs/guarantees.md), so the wait covers that plus the second replica's work.
    second = DaemonProcess(stack.daemon_environment())
    processes.append(second)
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=60, interval=0.5)
    assert stack.dead_letters() == []  # none fell into the dead poll until maxReceiveCount
    assert stack.stored() == stream.truth.final
    assert second.terminate()[0] == 0


def test_sigterm_during_an_sqs_brownout_still_exits_within_the_shutdown_timeout(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """Every SQS call hangs from the signal on: giving back the prefetched messages and
    flushing the deletes are bounded by the shared deadline, not by SQS's read timeout."""
    stack.emulator.faults.stall_share = 1.0
    stack.emulator.faults.stall_seconds = 2.0  # one worker, slow writes: the rest prefetched
    stream = generate(tasks=3, copies=1, seed=22, container_instances=0)
    env = stack.daemon_environment(
        ECSWATCH_WORKERS_COUNT="1", ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT)
    )
    proc = DaemonProcess(env)
    processes.append(proc)
    wait_for(lambda: in_long_poll(stack), timeout=30)
    stack.send(*stream.bodies())
    wait_for(lambda: proc.metric("ecswatch_messages_received_total") >= 5, timeout=20)
    stack.emulator.injector.delay_seconds = 30.0  # the brownout: every request hangs
    try:
        code, seconds = proc.terminate(timeout=60)
    finally:
        stack.emulator.injector.delay_seconds = 0.0
    assert code == 0, proc.stderr_text()[-2000:]
    assert seconds < SHUTDOWN_TIMEOUT + 2  # the release would wait for its 11 s read timeout
