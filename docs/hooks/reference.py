"""The MkDocs hook: writes the reference pages from the code and checks every page's names.

A reference page holds prose around a marker, `<!-- generated: metrics -->` (or `config`, `cli`,
`alerts`); at build time the marker becomes the table read from what the code defines
(sources.py): the collectors the daemon registers, the config's fields and their `doc`, the
argument parser, `deploy/prometheus/alerts.yml`. Nothing generated is committed, so no generated
page can be stale. Every page's cited names are checked too (names.py): each one the code lacks is
a warning, which `mkdocs build --strict` (tests/test_docs.py) fails on.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from typing import Any

from names import stale_names
from sources import alert_rules, metrics, rule_comments, subcommands

from ecswatch.config import ENV_PREFIX, SECTIONS, Config
from ecswatch.domain import stops

MARKER = re.compile(r"<!-- generated: (\w+) -->")
log = logging.getLogger("mkdocs.hooks.reference")


def scope(labels: tuple[str, ...]) -> str:
    """What one series stands for, from the label names: the unit its count grows with."""
    if "cluster" not in labels:  # `service` alone is an AWS service (sqs, dynamodb)
        return "replica"
    if "container" in labels:
        return "container"
    return "service" if {"service", "group"} & set(labels) else "cluster"


def metrics_page() -> str:
    lines = ["| metric | type | per | labels | meaning |", "|---|---|---|---|---|"]
    for m in metrics():
        labels = ", ".join(
            f"`{label}`" + (f" ({', '.join(m.values[label])})" if m.values.get(label) else "")
            for label in m.labels
            if label != "le"
        )
        meaning = _cell(m.help)
        if m.buckets:
            meaning += " Buckets (`le`): " + ", ".join(f"{b:g}" for b in m.buckets) + "."
        row = f"| `{m.name}` | {m.type} | {scope(m.labels)} | {labels or '–'} | {meaning} |"
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


def cli_page() -> str:
    out: list[str] = []
    for name, sub, help_text in subcommands():
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


def stop_causes_page() -> str:
    out = ["| # | cause | a failure | matches | stopCode | text starting with | a real example |"]
    out.append("|---|---|---|---|---|---|---|")
    for number, rule in enumerate(stops.RULES, 1):
        codes = ", ".join(f"`{code}`" for code in rule.stop_codes)
        texts = ", ".join(f"`{_cell(prefix)}`" for prefix in rule.prefixes)
        failure = "yes" if stops.is_failure(rule.cause) else "no"
        out.append(
            f"| {number} | `{rule.cause}` | {failure} | {_cell(rule.matches)} | {codes} | "
            f"{texts} | {_cell(rule.example)} |"
        )
    out.append("\n**Every cause** (the `cause` label's values) and whether it is a failure:\n")
    out += [
        f"- `{cause}`: {'a failure' if stops.is_failure(cause) else 'not a failure'}"
        for cause in stops.Cause
    ]
    return "\n".join(out)


GENERATORS: dict[str, Callable[[], str]] = {
    "metrics": metrics_page,
    "config": config_page,
    "cli": cli_page,
    "alerts": alerts_page,
    "stop_causes": stop_causes_page,
}


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
