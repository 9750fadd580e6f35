"""The reconciliation lease: one item, taken and renewed with conditional writes, so that of N
replicas exactly one reconciles at a time and a dead holder's lease simply expires.

Where it lives: a reserved key (`LEASE_KEY`) in the service table. That table already exists
wherever ecswatch runs, the task role may already write it, and its keys are service ARNs
(`arn:...`), which the reserved key can never be; a table of its own would be cleaner to look at
but costs a table, bootstrap and IAM changes for one item. Readers of the service table skip it
(`is_lease_key`).

Correctness: every write is one conditional PutItem, `attribute_not_exists(key) OR owner = :me
OR leaseExpiresAt < :now` (PutItem, not UpdateItem: moto's conditional UpdateItem is not atomic,
DynamoDB's and moto's PutItem are), so at any wall-clock time at most one owner holds an
unexpired lease. The holder counts its lease from *before* sending the write and gives it up
`SAFETY_SECONDS` early, so it stops working before any other replica can see it expire, as long
as replicas' clocks agree to within that margin (NTP on ECS keeps them to milliseconds).
The item also carries when the last pass started and last succeeded, so a new holder keeps the
fleet's rhythm (one pass per interval) and every replica exports the same last-success time.

Fencing: a write still in flight when its sender lost the lease is the one way two holders can
overlap (a paused process, a clock past the margin). Each takeover raises `leaseToken` by one,
and only from the token it read (`#token = :seen`: two replicas taking over from the same
holder cannot both get the same token), so tokens order holders; writes that no version
guards (service counts) carry the token and refuse to replace a higher one (Kleppmann's
fencing token).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.daemon.state.dynamo import is_condition_failure

LEASE_KEY = "ecswatch:lease:reconcile"
SAFETY_SECONDS = 1.0


def is_lease_key(service_arn: object) -> bool:
    return service_arn == LEASE_KEY


@dataclass(frozen=True, slots=True)
class LeaseState:
    owner: str = ""
    expires_at: float = 0.0
    last_pass_at: float = 0.0
    last_success_at: float = 0.0
    token: int = 0  # raised by one at every takeover


class Lease:
    """`renew()` takes or keeps the lease; `held()` says whether this replica may work now."""

    def __init__(
        self,
        client: Any,
        table: str,
        owner: str,
        lease_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = table
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._valid_until = 0.0  # monotonic
        self._renewed_at = float("-inf")  # monotonic
        #: the item as last seen: ours after a renewal, the holder's after a refusal
        self.state = LeaseState()

    def held(self) -> bool:
        return self._monotonic() < self._valid_until

    def time_left(self) -> float:
        """Seconds this replica may still work before it must have renewed."""
        return self._valid_until - self._monotonic()

    @property
    def token(self) -> int:
        """The fencing token of this holder's lease (meaningful while held)."""
        return self.state.token

    def due(self) -> bool:
        """A holder renews every third of the lease, so two lost renewals still leave time."""
        return self._monotonic() - self._renewed_at >= self.lease_seconds / 3

    def renew(
        self, *, last_pass_at: float | None = None, last_success_at: float | None = None
    ) -> bool:
        """Take or extend the lease (recording a pass start/success); False if another holds it."""
        taken = self._put(last_pass_at, last_success_at)
        if not taken and self.state.owner != self.owner and self.state.expires_at < self._clock():
            # Free, but its token moved since we last looked (a release, a takeover): once more
            # from the token just read, so a released lease is taken at once.
            taken = self._put(last_pass_at, last_success_at)
        return taken

    def _put(self, last_pass_at: float | None, last_success_at: float | None) -> bool:
        sent = self._monotonic()
        now = self._clock()
        seen = self.state.token
        wanted = LeaseState(
            self.owner,
            now + self.lease_seconds,
            max(self.state.last_pass_at, last_pass_at or 0.0),
            max(self.state.last_success_at, last_success_at or 0.0),
            seen if self.state.owner == self.owner else seen + 1,
        )
        # Ours still (owner = me), or expired and untouched since we read it (its token).
        takeover = "#expires < :now AND " + (
            "(attribute_not_exists(#token) OR #token = :seen)" if seen == 0 else "#token = :seen"
        )
        try:
            response = self._client.put_item(
                TableName=self._table,
                Item=_item(wanted),
                ConditionExpression=(
                    f"attribute_not_exists(serviceArn) OR #owner = :me OR ({takeover})"
                ),
                ExpressionAttributeNames={
                    "#owner": "leaseOwner", "#expires": "leaseExpiresAt", "#token": "leaseToken"
                },
                ExpressionAttributeValues={
                    ":me": {"S": self.owner}, ":now": _n(now), ":seen": {"N": str(seen)}
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise  # unknown outcome: still held until the last known deadline, no longer
            self.state = _state(exc.response.get("Item"))
            self._valid_until = 0.0
            return False
        old = _state(response.get("Attributes"))
        # The previous holder may have started a pass after we last looked: keep its times.
        self.state = LeaseState(
            self.owner,
            wanted.expires_at,
            max(wanted.last_pass_at, old.last_pass_at),
            max(wanted.last_success_at, old.last_success_at),
            wanted.token,
        )
        self._renewed_at = sent
        self._valid_until = sent + self.lease_seconds - SAFETY_SECONDS
        return True

    def release(self) -> None:
        """Let another replica take over at once (a clean stop); harmless if not ours."""
        if self.state.owner != self.owner:
            return
        self._valid_until = 0.0
        released = LeaseState(
            "", 0.0, self.state.last_pass_at, self.state.last_success_at, self.state.token
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(released),
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "leaseOwner"},
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


def _item(state: LeaseState) -> dict[str, Any]:
    return {
        "serviceArn": {"S": LEASE_KEY},
        "leaseOwner": {"S": state.owner},
        "leaseExpiresAt": _n(state.expires_at),
        "lastPassAt": _n(state.last_pass_at),
        "lastSuccessAt": _n(state.last_success_at),
        "leaseToken": {"N": str(state.token)},
    }


def _state(item: dict[str, Any] | None) -> LeaseState:
    item = item or {}

    def number(name: str) -> float:
        try:
            return float(item.get(name, {}).get("N", 0))
        except ValueError:
            return 0.0

    return LeaseState(
        str(item.get("leaseOwner", {}).get("S", "")),
        number("leaseExpiresAt"),
        number("lastPassAt"),
        number("lastSuccessAt"),
        int(number("leaseToken")),
    )
