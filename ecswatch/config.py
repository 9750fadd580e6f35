"""The frozen, validated configuration: TOML file, then ECSWATCH_<SECTION>_<KEY> overrides."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecswatch.domain.events import Resource

ENV_PREFIX = "ECSWATCH_"
CONFIG_ENV = "ECSWATCH_CONFIG"

Check = Callable[[Any], str | None]


def _between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low:g} and {high:g}"


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _url_or_empty(v: str) -> str | None:
    return None if not v or v.startswith(("http://", "https://")) else "must be an http(s) URL"


def _nonempty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _organization_id(v: str) -> str | None:
    return None if re.fullmatch(r"(o-[a-z0-9]{10,32})?", v) else "must be an o-... id or empty"


def _account_ids(v: str) -> str | None:
    ids = [part.strip() for part in v.split(",") if part.strip()]
    bad = [i for i in ids if not re.fullmatch(r"\d{12}", i)]
    return f"must be 12-digit account ids, comma-separated; not {', '.join(bad)}" if bad else None


def _opt(default: Any, check: Check | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True, slots=True)
class AwsConfig:
    region: str = _opt("", doc="empty: AWS_REGION / AWS_DEFAULT_REGION / profile")
    endpoint_url: str = _opt(
        "", _url_or_empty, 'LocalStack or an emulator, e.g. "http://localstack:4566"; empty for AWS'
    )


@dataclass(frozen=True, slots=True)
class SqsConfig:
    queue_url: str = _opt("", _url_or_empty, "required: the queue the EventBridge rule feeds")
    dead_letter_queue_url: str = _opt(
        "",
        _url_or_empty,
        "invalid messages are copied here with their reason; empty: left for the queue's own "
        "redrive policy",
    )
    wait_time_seconds: int = _opt(
        20, _between(0, 20), "long poll, 0..20; keep it below workers.shutdown_timeout"
    )
    max_messages: int = _opt(10, _between(1, 10), "per ReceiveMessage, 1..10")
    visibility_timeout: int = _opt(
        60,
        _between(5, 43200),
        "seconds a received message stays invisible; heartbeated while in work",
    )


@dataclass(frozen=True, slots=True)
class DynamoDbConfig:
    task_table: str = _opt("ECSTaskState", _nonempty, "key: taskArn (S)")
    container_instance_table: str = _opt(
        "ECSCtrInstanceState", _nonempty, "key: containerInstanceArn (S)"
    )
    stopped_task_ttl_days: int = _opt(
        7, _between(0, 36500), "expiresAt on STOPPED tasks (the table's TTL attribute); 0: never"
    )
    service_table: str = _opt(
        "ECSServiceState", _nonempty, "key: serviceArn (S); service actions and deployments"
    )
    service_event_table: str = _opt(
        "ECSServiceEventIds",
        _nonempty,
        "key: eventKey (S); one expiring marker per service event id",
    )
    idle_service_ttl_days: int = _opt(
        30,
        _between(0, 36500),
        "expiresAt on service items, moved on by every event: a deleted service leaves; 0: never",
    )

    def state_tables(self) -> dict[Resource, str]:
        """The one mapping from a resource kind to its versioned table."""
        return {
            Resource.TASK: self.task_table,
            Resource.CONTAINER_INSTANCE: self.container_instance_table,
        }


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    count: int = _opt(
        4,
        _between(1, 256),
        "threads writing events to DynamoDB; fetcher threads (one per three workers, at least "
        "two) long-poll SQS for them",
    )
    shutdown_timeout: float = _opt(
        25.0,
        _between(1, 3600),
        "seconds to drain on SIGTERM; below ECS's default 30 s stopTimeout",
    )


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    host: str = _opt("0.0.0.0", _nonempty, "/metrics, /healthz, /readyz")
    port: int = _opt(9108, _between(0, 65535), "0 picks a free port (logged at start)")
    service_state_refresh_seconds: float = _opt(
        30.0,
        _between(0, 3600),
        "how soon the service gauges show other replicas' changes (their journal); the service "
        "table is rescanned every 10 refreshes (counts, expiries); 0: own writes only",
    )
    start_phases_per_service: bool = _opt(
        False,
        doc="ecswatch_task_start_phase_seconds by service (label group) too, not only by "
        "cluster: ~42 series per service",
    )


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = _opt(
        "INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG, INFO, WARNING, ERROR"
    )
    format: str = _opt(
        "auto",
        _one_of("auto", "json", "console"),
        "json, console, or auto (console on a terminal, else JSON)",
    )


@dataclass(frozen=True, slots=True)
class EventsConfig:
    redact_environment: bool = _opt(
        True, doc='store container override environment values as "***"'
    )


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """used by `ecswatch bootstrap` only"""

    queue_name: str = _opt("ecswatch-events", _nonempty, "when sqs.queue_url is empty")
    dead_letter_queue_name: str = _opt(
        "ecswatch-events-dlq", _nonempty, "when sqs.dead_letter_queue_url is empty"
    )
    max_receive_count: int = _opt(
        5, _between(1, 1000), "receives before SQS moves a message to the DLQ"
    )
    rule_name: str = _opt(
        "ecswatch-ecs-events", _nonempty, "EventBridge rule matching source aws.ecs"
    )
    event_bus_name: str = _opt(
        "default", _nonempty, '"default": this account\'s events; else a central bus'
    )
    organization_id: str = _opt(
        "", _organization_id, "o-...: every account of it may put events on the bus"
    )
    member_account_ids: str = _opt(
        "", _account_ids, "or these, comma-separated 12-digit account ids"
    )


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """the daemon's passes against the ECS API (and `ecswatch reconcile`)"""

    interval_seconds: float = _opt(
        300.0, _between(0, 86400), "seconds between passes, by one replica at a time; 0: off"
    )
    clusters: str = _opt("", doc="comma-separated cluster names or ARNs; empty: every cluster")
    lease_seconds: float = _opt(
        60.0, _between(3, 3600), "a dead reconciler's lease expires after this; another takes over"
    )
    max_api_calls_per_second: float = _opt(
        5.0, _between(0.1, 100), "ECS API calls per second of a pass; halved while ECS throttles"
    )

    def cluster_list(self) -> list[str]:
        return [name.strip() for name in self.clusters.split(",") if name.strip()]


@dataclass(frozen=True, slots=True)
class Config:
    aws: AwsConfig = field(default_factory=AwsConfig)
    sqs: SqsConfig = field(default_factory=SqsConfig)
    dynamodb: DynamoDbConfig = field(default_factory=DynamoDbConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)

    @property
    def readiness_window_seconds(self) -> float:
        """How recent the last successful receive must be for /readyz (contract)."""
        return 2 * self.sqs.wait_time_seconds + 10

    @property
    def stall_seconds(self) -> float:
        """How long a loop may go without a round before /healthz calls the process wedged:
        longer than a long poll plus its read timeout, and than a write's worst retries."""
        return 120 + 2 * self.sqs.wait_time_seconds


SECTIONS: dict[str, type[Any]] = {
    "aws": AwsConfig,
    "sqs": SqsConfig,
    "dynamodb": DynamoDbConfig,
    "workers": WorkersConfig,
    "metrics": MetricsConfig,
    "log": LogConfig,
    "events": EventsConfig,
    "bootstrap": BootstrapConfig,
    "reconcile": ReconcileConfig,
}


class ConfigError(Exception):
    """Every problem found in the configuration, each naming its key."""

    def __init__(self, problems: list[str], log_format: str = "auto") -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        #: [log] format as far as it could be read, so the error itself is rendered as asked
        self.log_format = log_format


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    require_queue: bool = True,
) -> Config:
    """Build the config from `path` (else $ECSWATCH_CONFIG, else defaults) and the environment."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    raw = _read_file(path or env.get(CONFIG_ENV) or None, problems)
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for section, table in raw.items():
        if section not in SECTIONS:
            problems.append(f"{section}: unknown section")
        elif not isinstance(table, dict):
            problems.append(f"{section}: must be a table")
        else:
            values[section].update(table)
    for name, text in env.items():
        if name.startswith(ENV_PREFIX) and name != CONFIG_ENV:
            _apply_env(name, text, values, problems)
    sections = {name: _build(name, cls, values[name], problems) for name, cls in SECTIONS.items()}
    config = Config(**sections)  # invalid values were left out, so this always builds
    if require_queue and not config.sqs.queue_url and "queue_url" not in values["sqs"]:
        problems.append("sqs.queue_url: required (or set ECSWATCH_SQS_QUEUE_URL)")
    if problems:
        raise ConfigError(problems, config.log.format)
    return config


def _read_file(path: str | os.PathLike[str] | None, problems: list[str]) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        problems.append(f"config file {os.fspath(path)}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"config file {os.fspath(path)}: invalid TOML: {exc}")
    return {}


def _apply_env(
    name: str, text: str, values: dict[str, dict[str, Any]], problems: list[str]
) -> None:
    section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
    cls = SECTIONS.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    if key not in fields:
        problems.append(f"{name}: unknown setting")
        return
    kind = _field_type(fields[key])
    try:
        values[section][key] = _parse_env_value(text, kind)
    except ValueError:
        problems.append(f"{name}: must be {_type_word(kind)}, got {text!r}")


def _parse_env_value(text: str, kind: type) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def _field_type(f: dataclasses.Field[Any]) -> type:
    return {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]


def _type_word(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[kind]


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _build(section: str, cls: type[Any], given: dict[str, Any], problems: list[str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in given.items():
        f = fields.get(key)
        if f is None:
            problems.append(f"{section}.{key}: unknown key")
            continue
        kind = _field_type(f)
        if not _type_ok(value, kind):
            problems.append(f"{section}.{key}: must be {_type_word(kind)}, got {value!r}")
            continue
        typed = float(value) if kind is float else value
        check: Check | None = f.metadata.get("check")
        error = check(typed) if check else None
        if error:
            problems.append(f"{section}.{key}: {error}, got {typed!r}")
            continue
        kwargs[key] = typed
    return cls(**kwargs)


def override(config: Config, **sections: Mapping[str, Any]) -> Config:
    """A copy with some keys replaced: `override(c, sqs={"queue_url": url})`. Not validated."""
    return dataclasses.replace(
        config,
        **{
            name: dataclasses.replace(getattr(config, name), **values)
            for name, values in sections.items()
        },
    )


def describe(config: Config) -> str:
    """The effective configuration as TOML, for `ecswatch check-config`."""
    lines: list[str] = []
    for name in SECTIONS:
        lines.append(f"[{name}]")
        section = getattr(config, name)
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
