"""The reconciliation lease on moto's DynamoDB: one holder, expiry, release, the fleet's rhythm."""

from __future__ import annotations

from ecswatch.daemon.reconcile.lease import Lease
from tests.conftest import Stack


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def leases(stack: Stack, clock: Clock) -> tuple[Lease, Lease]:
    table = stack.config.dynamodb.service_table
    return tuple(  # type: ignore[return-value]
        Lease(stack.dynamodb, table, owner, 30.0, clock=clock, monotonic=clock)
        for owner in ("a", "b")
    )


def test_one_holder_until_its_lease_expires(stack: Stack) -> None:
    """The second replica is refused while the lease runs and takes it once it expired."""
    clock = Clock()
    a, b = leases(stack, clock)
    assert a.renew(last_pass_at=clock.now)
    assert not b.renew()
    assert b.state.owner == "a" and b.state.last_pass_at == clock.now  # others see the rhythm
    clock.now += 20
    assert a.renew() and a.held()
    clock.now += 29
    assert not b.renew()
    clock.now += 2  # a stopped renewing 31 s ago: expired
    assert not a.held()
    assert b.renew() and b.held()
    assert b.state.last_pass_at == 1_000_000.0  # the new holder keeps the last pass time
    assert not a.renew()


def test_a_released_lease_is_taken_at_once(stack: Stack) -> None:
    """A clean stop releases the lease; another replica need not wait for expiry."""
    clock = Clock()
    a, b = leases(stack, clock)
    assert a.renew(last_success_at=clock.now - 5)
    a.release()
    assert not a.held()
    assert b.renew()
    assert b.state.last_success_at == clock.now - 5


def test_every_takeover_raises_the_fencing_token_and_renewals_keep_it(stack: Stack) -> None:
    """Tokens order holders: a renewal keeps its token, each takeover (after expiry or a
    release) gets the next one, and a replica whose view is stale cannot reuse a token."""
    clock = Clock()
    a, b = leases(stack, clock)
    assert a.renew() and a.token == 1
    clock.now += 20
    assert a.renew() and a.token == 1
    clock.now += 31
    assert b.renew() and b.token == 2  # a's lease expired
    b.release()
    c = Lease(stack.dynamodb, stack.config.dynamodb.service_table, "c", 30.0, clock=clock,
              monotonic=clock)  # fmt: skip
    assert a.renew() and a.token == 3  # a last saw token 1: it reads 2, then takes 3
    clock.now += 31
    assert c.renew() and c.token == 4  # never looked before: reads 3, takes 4
    assert not a.renew() and not a.held()
