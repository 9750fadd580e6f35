"""config.example.toml documents every key, with the defaults and the docs the code states.

The code is the source: a key's doc is its field's `doc` (config.py), a section's its class
docstring. The example repeats them as comments, so it cannot drift; a new key needs only its
`doc` and its line here (the failure prints the line to paste).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from ecswatch.config import SECTIONS, Config, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
HEADER = re.compile(r"^\[(\w+)\]\s*(?:#\s*(.*))?$")
KEY = re.compile(r"^(\w+)\s*=.*?(?:#\s*(.*))?$")  # a comment after the value (no '#' in values)


def documented() -> dict[str, dict[str, str]]:
    """section -> {"" (the section): its comment, key: its comment}, continuation lines joined."""
    found: dict[str, dict[str, str]] = {}
    section = last = ""
    for line in EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if match := HEADER.match(stripped):
            section, last = match.group(1), ""
            found[section] = {"": match.group(2) or ""}
        elif section and (match := KEY.match(stripped)):
            last = match.group(1)
            found[section][last] = match.group(2) or ""
        elif section and stripped.startswith("#") and line[0].isspace():
            found[section][last] += " " + stripped.lstrip("# ")
    return found


def section_doc(cls: type[Any]) -> str:
    """The class docstring; empty when the dataclass wrote its own (the signature)."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(f"{cls.__name__}(") else " ".join(doc.split())


def test_example_names_every_key_of_every_section() -> None:
    """Every section and key of the config, and nothing else, is in the example."""
    example = tomllib.loads(EXAMPLE.read_text())
    assert set(example) == set(SECTIONS)
    for name, cls in SECTIONS.items():
        assert set(example[name]) == {f.name for f in dataclasses.fields(cls)}, name


def test_example_values_are_the_defaults() -> None:
    """Loading the example gives the built-in defaults."""
    loaded = load_config(EXAMPLE, {}, require_queue=False)
    assert loaded == Config()


def test_every_key_has_a_doc_and_the_example_comments_are_those_docs() -> None:
    """Each example comment is its key's `doc` (or its section's docstring), word for word."""
    comments = documented()
    wrong: list[str] = []
    for name, cls in SECTIONS.items():
        if comments[name][""] != section_doc(cls):
            wrong.append(f"[{name}]  # {section_doc(cls)}".rstrip(" #"))
        for f in dataclasses.fields(cls):
            doc = " ".join(str(f.metadata.get("doc", "")).split())
            assert doc, f"{name}.{f.name}: give the field a doc= in config.py"
            if " ".join(comments[name].get(f.name, "").split()) != doc:
                default = getattr(getattr(Config(), name), f.name)
                wrong.append(f"{f.name} = {_toml(default)}  # {doc}  (in [{name}])")
    assert not wrong, "config.example.toml differs from config.py's docs; expected:\n" + "\n".join(
        wrong
    )


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
