"""The names a page may cite, checked against the code: a renamed or removed one is reported.

Backticked metric names, alert names, `section.key` config keys, `ecswatch <command>`s, repository
files and folders, and `test_x.py::test_y` tests; the hook warns for each one the code lacks, and
the strict build fails on a warning.
"""

from __future__ import annotations

import dataclasses
import re

from sources import ROOT, alert_rules, commands, metrics, module_names, repository_files

from ecswatch.config import SECTIONS, Config

METRIC_NAME = re.compile(r"`(ecswatch_[a-z0-9_]+\*?)")
ALERT_NAME = re.compile(r"`(ECS[A-Z][A-Za-z]+)`")
CONFIG_KEY = re.compile(rf"`({'|'.join(SECTIONS)})\.([a-z_]+)(?:`| =)")
COMMAND = re.compile(r"`ecswatch ([a-z][a-z-]*)")
FILE = re.compile(
    r"`((?:ecswatch|tests|deploy|bench|docs)/[\w./-]*\w|[\w./-]+\.(?:py|ya?ml|json|toml|js))`?"
)
TEST = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)((?:::\w+)+)")
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def _known_metric(name: str) -> bool:
    known = {m.name for m in metrics()} | {m.name.removesuffix("_total") for m in metrics()}
    if name.endswith("*"):  # `ecswatch_reconcile_*`: a family of names
        return any(k.startswith(name[:-1]) for k in known)
    return name in known or any(
        name.endswith(s) and name.removesuffix(s) in known for s in SUFFIXES
    )


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
