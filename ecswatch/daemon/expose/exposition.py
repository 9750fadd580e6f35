"""The Prometheus text format of /metrics: prometheus_client's own `generate_latest`, byte for
byte, without the per-sample work it repeats for nothing.

Why: at 5,000 services a replica exports ~175,000 series, and `generate_latest` validates and
escapes every label *name* of every sample (a regex per label) although the registry has a few
dozen names. Here names go through prometheus_client's own escaping once each (cached), and a
label value is escaped only when it holds a character to escape: ~40 % less CPU per scrape
(bench/scale.py). tests/daemon/expose/test_exposition.py holds the output equal to
`generate_latest`'s on the daemon's registry, so a prometheus_client upgrade that changes the
format fails there, not in Prometheus.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

#: OpenMetrics-only samples the text format moves into a gauge of their own after the family
OM_SUFFIXES = ("_created", "_gsum", "_gcount")
MUNGED_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
                "unknown": "untyped"}  # fmt: skip

metric_name = functools.lru_cache(maxsize=1024)(openmetrics.escape_metric_name)
label_name = functools.lru_cache(maxsize=1024)(openmetrics.escape_label_name)


def number(value: float) -> str:
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def sample_line(sample: Any) -> str:
    labels = sample.labels
    if labels:
        inner = ",".join([f'{label_name(k)}="{label_value(v)}"' for k, v in sorted(labels.items())])
        line = f"{metric_name(sample.name)}{{{inner}}} "
    else:
        line = f"{metric_name(sample.name)} "
    line += "1.0" if sample.value == 1.0 else number(sample.value)
    if sample.timestamp is not None:
        line += f" {int(float(sample.timestamp) * 1000):d}"
    return line + "\n"


def chunks(families: Iterable[Any]) -> Iterator[bytes]:
    """`families` (a registry's `collect()`) in the Prometheus text format, one family at a
    time: a scrape never holds more than one family's lines (the largest, a per-service
    histogram at 5,000 services, is ~70,000) beside the bytes already made."""
    for family in families:
        output: list[str] = []
        name, kind = family.name, family.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        output.append(f"# HELP {metric_name(name)} {doc}\n")
        output.append(f"# TYPE {metric_name(name)} {MUNGED_TYPES.get(kind, kind)}\n")
        moved = {family.name + suffix: suffix for suffix in OM_SUFFIXES}
        extra: dict[str, list[str]] = {}
        for sample in family.samples:
            suffix = moved.get(sample.name)
            if suffix is None:
                output.append(sample_line(sample))
            else:
                extra.setdefault(suffix, []).append(sample_line(sample))
        for suffix, lines in sorted(extra.items()):
            output.append(f"# HELP {metric_name(family.name + suffix)} {doc}\n")
            output.append(f"# TYPE {metric_name(family.name + suffix)} gauge\n")
            output.extend(lines)
        yield "".join(output).encode("utf-8")


def text(families: Iterable[Any]) -> bytes:
    return b"".join(chunks(families))
