"""`ecswatch reconcile`: one reconciliation pass on demand, a dry run unless `--apply`.

The pass is the daemon's own (daemon.reconcile.drift, where its correctness is argued): fixes go
through the events' version-guarded write, and a resource ECS no longer knows is marked at its
stored version, never at an invented one, so its real STOPPED event still wins.
The command exports no metrics, so its task writes go through state.owed.OwingStore: what they
would count (a failed start, a death, start phases) is left owed on the item, and the next
daemon to write that item (its event, a newer one, or its reconciliation pass) counts it once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ecswatch.config import Config
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.reconcile.drift import Fix, Pass, Tally
from ecswatch.daemon.reconcile.ecs import ECS_READ, EcsApi, RateLimiter
from ecswatch.daemon.state.owed import OwingStore
from ecswatch.daemon.state.store import WriteResult


def reconcile(
    ecs: Any,
    dynamodb: Any,
    config: Config,
    clusters: list[str],
    *,
    apply: bool,
    report: Callable[[Fix, WriteResult | None], None] = lambda fix, result: None,
) -> Tally:
    """One pass over `clusters` (empty: `reconcile.clusters`, else all) with these clients."""
    stop = threading.Event()
    retrier = Retrier(ECS_READ, abort=stop)
    api = EcsApi(ecs, retrier, RateLimiter(config.reconcile.max_api_calls_per_second, stop))
    write_retrier = Retrier(WRITE, abort=stop)
    store = OwingStore(dynamodb, config.dynamodb.state_tables(), write_retrier)
    drift = Pass(api, dynamodb, store, config, write_retrier, apply=apply, on_fix=report)
    drift.run(clusters or config.reconcile.cluster_list())
    return drift.tally
