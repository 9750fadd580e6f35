"""What the code defines, read for the documentation: metrics, commands, alert rules, files.

Read from the objects, not parsed from source: the collectors the daemon registers (on a
registry of our own, nothing started), the argument parser, alerts.yml as Prometheus loads it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

import ecswatch
from ecswatch import cli
from ecswatch.config import SECTIONS, Config
from ecswatch.daemon import app

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


class MetricDoc(NamedTuple):
    name: str  # as exposed: counters with _total
    type: str
    help: str
    labels: tuple[str, ...]
    values: dict[str, list[str]]  # label -> values the daemon sets from its start
    buckets: tuple[float, ...] = ()  # a histogram's upper bounds, +Inf left out


class Recording(CollectorRegistry):
    """A registry that remembers its collectors, to read their label names."""

    def __init__(self) -> None:
        super().__init__()
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self.collectors.append(collector)


def daemon_collectors(registry: CollectorRegistry) -> None:
    """Register what the daemon registers (daemon/app.py), with the classes it wires, without
    starting anything; tests/integration/test_docs_metrics.py compares a running daemon's."""
    tables = Config().dynamodb
    app.Metrics(
        registry,
        tables=(*tables.state_tables().values(), tables.service_table, tables.service_event_table),
    )
    app.ReconcileMetrics(registry, interval_seconds=Config().reconcile.interval_seconds)
    registry.register(app.ServiceStateCollector(store=None, refresh_seconds=0))  # type: ignore[arg-type]


def catalogue(registry: Recording) -> tuple[MetricDoc, ...]:
    """Every metric family of the registry's collectors, sorted by name."""
    found: list[MetricDoc] = []
    for collector in registry.collectors:
        for family in collector.collect():
            labels = getattr(collector, "_labelnames", None) or getattr(family, "_labelnames", ())
            values: dict[str, list[str]] = {}
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    for label, value in sample.labels.items():
                        if value not in values.setdefault(label, []):
                            values[label].append(value)
            name = family.name + ("_total" if family.type == "counter" else "")
            bounds = getattr(collector, "_upper_bounds", ())  # client_python's Histogram
            buckets = tuple(b for b in bounds if b != float("inf"))
            found.append(
                MetricDoc(name, family.type, family.documentation, tuple(labels), values, buckets)
            )
    return tuple(sorted(found))


@cache
def metrics() -> tuple[MetricDoc, ...]:
    registry = Recording()
    daemon_collectors(registry)
    return catalogue(registry)


def subcommands() -> Iterator[tuple[str, Any, str]]:
    parser = cli._parser()
    for action in parser._actions:
        if hasattr(action, "_choices_actions"):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name) or ""


@cache
def commands() -> frozenset[str]:
    return frozenset(name for name, _, _ in subcommands())


@cache
def alert_rules() -> tuple[tuple[str, dict[str, Any]], ...]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return tuple((g["name"], r) for g in groups for r in g["rules"] if "alert" in r)


def rule_comments() -> dict[str, str]:
    """alert name -> the comment lines right under its `- alert:` line in alerts.yml."""
    found: dict[str, str] = {}
    name = ""
    for line in ALERTS.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert:"):
            name = stripped.removeprefix("- alert:").strip()
            found[name] = ""
        elif name and stripped.startswith("#"):
            found[name] += " " + stripped.lstrip("# ")
        else:
            name = ""
    return {alert: text.strip() for alert, text in found.items()}


@cache
def module_names() -> frozenset[tuple[str, str]]:
    """(module, attribute) of every ecswatch module named like a config section."""
    found: set[tuple[str, str]] = set()
    for info in pkgutil.walk_packages(ecswatch.__path__, "ecswatch."):
        short = info.name.rpartition(".")[2]
        if short in SECTIONS:
            found |= {(short, name) for name in dir(importlib.import_module(info.name))}
    return frozenset(found)


@cache
def repository_files() -> tuple[str, ...]:
    """Every file of the parts of the tree the docs cite, as paths from the top."""
    tops = [ROOT / top for top in ("ecswatch", "tests", "deploy", "bench", "docs", ".ci")]
    found = [p for top in tops for p in top.rglob("*") if p.is_file()]
    found += [p for p in ROOT.iterdir() if p.is_file()]
    return tuple(str(p.relative_to(ROOT)) for p in found)
