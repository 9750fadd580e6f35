"""The MkDocs hook that writes the reference pages from the code and checks every page's names.

A reference page holds prose around a marker, `<!-- generated: metrics -->` (or `config`, `cli`,
`alerts`); at build time the marker becomes the table read from what the code defines: the
collectors the daemon registers (names, types, help, label names, pre-set label values), the
config's fields and their `doc`, the argument parser, and `deploy/prometheus/alerts.yml`. Nothing
generated is committed, so no generated page can be stale. Then every page's backticked metric
names, alert names, `section.key` config keys and `ecswatch <command>`s are checked against the
same sources, and its repository paths and test names against the tree: a name the
code no longer has is a warning, which `mkdocs build --strict` (tests/test_docs.py) fails on.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

import ecswatch
from ecswatch import cli
from ecswatch.config import ENV_PREFIX, SECTIONS, Config
from ecswatch.daemon import app

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
MARKER = re.compile(r"<!-- generated: (\w+) -->")
log = logging.getLogger("mkdocs.hooks.reference")


class MetricDoc(NamedTuple):
    name: str  # as exposed: counters with _total
    type: str
    help: str
    labels: tuple[str, ...]
    values: dict[str, list[str]]  # label -> values the daemon sets from its start


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
            found.append(MetricDoc(name, family.type, family.documentation, tuple(labels), values))
    return tuple(sorted(found))


@cache
def metrics() -> tuple[MetricDoc, ...]:
    registry = Recording()
    daemon_collectors(registry)
    return catalogue(registry)


def scope(labels: tuple[str, ...]) -> str:
    """What one series stands for, from the label names: the unit its count grows with."""
    if "container" in labels:
        return "container"
    if {"service", "group"} & set(labels):
        return "service"
    if "cluster" in labels:
        return "cluster"
    return "replica"


def metrics_page() -> str:
    lines = ["| metric | type | per | labels | meaning |", "|---|---|---|---|---|"]
    for m in metrics():
        labels = ", ".join(
            f"`{label}`" + (f" ({', '.join(m.values[label])})" if m.values.get(label) else "")
            for label in m.labels
            if label != "le"
        )
        row = f"| `{m.name}` | {m.type} | {scope(m.labels)} | {labels or '–'} | {_cell(m.help)} |"
        lines.append(row)
    return "\n".join(lines)


def config_page() -> str:
    out: list[str] = []
    defaults = Config()
    for section, cls in SECTIONS.items():
        out.append(f"### `[{section}]`\n")
        doc = cls.__doc__ or ""
        if doc and not doc.startswith(f"{cls.__name__}("):
            out.append(_sentence(doc) + "\n")
        out.append("| key | default | environment variable | meaning |\n|---|---|---|---|")
        for f in dataclasses.fields(cls):
            default = getattr(getattr(defaults, section), f.name)
            env = f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
            doc = _cell(str(f.metadata.get("doc", "")))
            out.append(f"| `{section}.{f.name}` | `{_toml(default)}` | `{env}` | {doc} |")
        out.append("")
    return "\n".join(out)


def _subcommands() -> Iterator[tuple[str, Any, str]]:
    parser = cli._parser()
    for action in parser._actions:
        if hasattr(action, "_choices_actions"):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name) or ""


@cache
def commands() -> frozenset[str]:
    return frozenset(name for name, _, _ in _subcommands())


def cli_page() -> str:
    out: list[str] = []
    for name, sub, help_text in _subcommands():
        out.append(f"### `ecswatch {name}`\n\n{_sentence(help_text)}\n")
        rows = ["| option | default | meaning |", "|---|---|---|"]
        for action in sub._actions:
            if action.dest == "help":
                continue
            flag = ", ".join(action.option_strings) or action.dest
            if action.metavar or action.choices:
                flag += " " + (action.metavar or "{" + ",".join(action.choices) + "}")
            unset = action.default is None or action.default is False or action.default == []
            default = "" if unset else f"`{action.default}`"
            rows.append(f"| `{flag}` | {default} | {_cell(action.help or '')} |")
        out.append("\n".join(rows) + "\n")
    return "\n".join(out)


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


def alerts_page() -> str:
    out: list[str] = []
    comments = rule_comments()
    for group, rule in alert_rules():
        annotations = rule.get("annotations", {})
        severity = rule.get("labels", {}).get("severity", "")
        held = f", for {rule['for']}" if "for" in rule else ""
        out.append(f"### `{rule['alert']}`\n")
        out.append(f"*{severity}*{held} · group `{group}`\n")
        if "summary" in annotations:
            out.append(f"**Summary:** {_cell(annotations['summary'])}\n")
        if "description" in annotations:
            out.append(_cell(annotations["description"]) + "\n")
        if comments.get(rule["alert"]):
            out.append(f"**How it reads:** {_cell(comments[rule['alert']])}\n")
        out.append("```promql\n" + rule["expr"].rstrip() + "\n```\n")
    return "\n".join(out)


GENERATORS: dict[str, Callable[[], str]] = {
    "metrics": metrics_page,
    "config": config_page,
    "cli": cli_page,
    "alerts": alerts_page,
}

METRIC_NAME = re.compile(r"`(ecswatch_[a-z0-9_]+\*?)")
ALERT_NAME = re.compile(r"`(ECS(?:Watch|Service)[A-Za-z]+)`")
CONFIG_KEY = re.compile(rf"`({'|'.join(SECTIONS)})\.([a-z_]+)(?:`| =)")
COMMAND = re.compile(r"`ecswatch ([a-z][a-z-]*)")
PATH = re.compile(r"`((?:ecswatch|tests|deploy|bench|docs)/[\w./-]*\w)")
TEST = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)((?:::\w+)*)")
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def _known_metric(name: str) -> bool:
    known = {m.name for m in metrics()} | {m.name.removesuffix("_total") for m in metrics()}
    if name.endswith("*"):  # `ecswatch_reconcile_*`: a family of names
        return any(k.startswith(name[:-1]) for k in known)
    return name in known or any(
        name.endswith(s) and name.removesuffix(s) in known for s in SUFFIXES
    )


@cache
def module_names() -> frozenset[tuple[str, str]]:
    """(module, attribute) of every ecswatch module named like a config section."""
    found: set[tuple[str, str]] = set()
    for info in pkgutil.walk_packages(ecswatch.__path__, "ecswatch."):
        short = info.name.rpartition(".")[2]
        if short in SECTIONS:
            found |= {(short, name) for name in dir(importlib.import_module(info.name))}
    return frozenset(found)


def stale_names(markdown: str) -> list[str]:
    """Backticked names in a page that the code does not define."""
    wrong = [f"metric `{n}`" for n in METRIC_NAME.findall(markdown) if not _known_metric(n)]
    tables = {getattr(Config().dynamodb, f.name) for f in dataclasses.fields(Config().dynamodb)}
    alerts = {rule["alert"] for _, rule in alert_rules()}
    wrong += [f"alert `{n}`" for n in ALERT_NAME.findall(markdown) if n not in alerts | tables]
    keys = {(s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    keys |= module_names()  # `events.parse_message` names a function, not a key
    keys.add(("aws", "ecs"))  # the events' source
    wrong += [
        f"config key `{s}.{k}`" for s, k in CONFIG_KEY.findall(markdown) if (s, k) not in keys
    ]
    wrong += [f"command `ecswatch {c}`" for c in COMMAND.findall(markdown) if c not in commands()]
    wrong += [f"path `{p}`" for p in PATH.findall(markdown) if not (ROOT / p).exists()]
    wrong += [f"test `{f}{n}`" for f, n in TEST.findall(markdown) if not _test_exists(f, n)]
    return wrong


def _test_exists(file: str, names: str) -> bool:
    """`test_x.py::test_y` (or tests/.../test_x.py): some such file defines every name."""
    candidates = [ROOT / file] if "/" in file else list((ROOT / "tests").rglob(file))
    wanted = [n for n in names.split("::") if n]
    return any(
        path.is_file() and all(f"def {n}(" in path.read_text() for n in wanted)
        for path in candidates
    )


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    def generate(match: re.Match[str]) -> str:
        if match.group(1) not in GENERATORS:
            log.warning("%s: no generator %r", page.file.src_uri, match.group(1))
            return match.group(0)
        return GENERATORS[match.group(1)]()

    for name in stale_names(markdown):
        log.warning("%s names %s, which the code does not define", page.file.src_uri, name)
    return MARKER.sub(generate, markdown)


def _sentence(text: str) -> str:
    text = _cell(text)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    return repr(value)
