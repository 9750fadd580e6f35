"""The names a page may cite, checked against the code: a renamed or removed one is reported.

Backticked metric names (and the label names written with them), alert names, `section.key`
config keys, `ecswatch <command>`s, repository files and folders, and `test_x.py::test_y` tests;
the hook warns for each one the code lacks, and the strict build fails on a warning.
"""

from __future__ import annotations

import dataclasses
import re

from sources import ROOT, alert_rules, commands, metrics, module_names, repository_files

from ecswatch.config import SECTIONS, Config

METRIC_NAME = re.compile(r"`(ecswatch_[a-z0-9_]+\*?)(?:\{([^}`]*)\})?")
LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=|,|$)")
ALERT_NAME = re.compile(r"`(ECS[A-Z][A-Za-z]+)`")
CONFIG_KEY = re.compile(rf"`({'|'.join(SECTIONS)})\.([a-z_]+)(?:`| =)")
COMMAND = re.compile(r"`ecswatch ([a-z][a-z-]*)")
FILE = re.compile(
    r"`((?:ecswatch|tests|deploy|bench|docs)/[\w./-]*\w|[\w./-]+\.(?:py|ya?ml|json|toml|js))`?"
)
TEST = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)((?:::\w+)+)")
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def _labels_of(name: str) -> tuple[str, ...] | None:
    """The label names of a metric as exposed (`_total`, `_bucket`, ... too); None if unknown."""
    known = {m.name: m.labels for m in metrics()}
    known |= {m.name.removesuffix("_total"): m.labels for m in metrics()}
    for candidate in (name, *(name.removesuffix(s) for s in SUFFIXES if name.endswith(s))):
        if candidate in known:
            return (*known[candidate], "le") if name.endswith("_bucket") else known[candidate]
    return None


def _metric_wrong(name: str, labels: str) -> str | None:
    """What is wrong with `name{labels}` as written in a page (nothing: None)."""
    if name.endswith("*"):  # `ecswatch_reconcile_*`: a family of names
        prefix = name[:-1]
        return None if any(m.name.startswith(prefix) for m in metrics()) else f"metric `{name}`"
    known = _labels_of(name)
    if known is None:
        return f"metric `{name}`"
    unknown = [label for label in LABEL.findall(labels) if label not in known]
    return f"label `{', '.join(unknown)}` of `{name}`" if unknown else None


def stale_names(markdown: str) -> list[str]:
    """Backticked names in a page that the code does not define."""
    wrong = [w for n, labels in METRIC_NAME.findall(markdown) if (w := _metric_wrong(n, labels))]
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
    wrong += [f"file `{f}`" for f in FILE.findall(markdown) if not _file_exists(f)]
    wrong += [f"test `{f}{n}`" for f, n in TEST.findall(markdown) if not _test_exists(f, n)]
    return wrong


def _file_exists(name: str) -> bool:
    """A path (or folder) from the top, or the end of one (`pause.py`, `reconcile/lease.py`);
    files of the sibling `shared/` checkout (bench/compare.py's fastaws.js) are not ours."""
    if name.startswith("shared/") or (ROOT / name).exists():
        return True
    return any(path == name or path.endswith("/" + name) for path in repository_files())


def _test_exists(file: str, names: str) -> bool:
    """`test_x.py::test_y` (or tests/.../test_x.py): some such file defines every name."""
    candidates = [ROOT / file] if "/" in file else list((ROOT / "tests").rglob(file))
    wanted = [n for n in names.split("::") if n]
    return any(
        path.is_file() and all(f"def {n}(" in path.read_text() for n in wanted)
        for path in candidates
    )
