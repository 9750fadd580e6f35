"""config.example.toml documents every key, with the defaults it states."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from ecswatch.config import SECTIONS, Config, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_example_names_every_key_of_every_section() -> None:
    example = tomllib.loads(EXAMPLE.read_text())
    assert set(example) == set(SECTIONS)
    for name, cls in SECTIONS.items():
        assert set(example[name]) == {f.name for f in dataclasses.fields(cls)}, name


def test_example_values_are_the_defaults() -> None:
    loaded = load_config(EXAMPLE, {}, require_queue=False)
    assert loaded == Config()
