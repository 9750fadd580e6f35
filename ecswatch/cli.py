"""The `ecswatch` command line: thin, forwards to the modules that do the work."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)

from ecswatch import __version__
from ecswatch.config import CONFIG_ENV, ENV_PREFIX, Config, ConfigError, describe, load_config
from ecswatch.domain.arns import account_of, region_of
from ecswatch.logging import configure_logging, renders_json

NO_CREDENTIALS = "aws: no AWS credentials found (task role, environment, or profile)"
EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2

NO_REGION = (
    "aws.region: no AWS region configured (set aws.region, ECSWATCH_AWS_REGION or AWS_REGION)"
)


CONFIG_HELP = f"""configuration:
  the TOML file given by --config PATH, else ${CONFIG_ENV}, else built-in defaults
  (every key documented in config.example.toml); then any key overridden by an
  environment variable {ENV_PREFIX}<SECTION>_<KEY>, e.g. {ENV_PREFIX}SQS_QUEUE_URL.
  AWS credentials and region come from the standard AWS chain.
  `ecswatch check-config` prints the effective configuration."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecswatch",
        description="Exact ECS task and container-instance state from EventBridge, via SQS, "
        "into DynamoDB, with Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"ecswatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=CONFIG_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--config", metavar="PATH", help=f"TOML file (default: ${CONFIG_ENV}, else built-ins)"
        )
        return sub

    command("run", "run the daemon until SIGTERM/SIGINT")
    command(
        "bootstrap",
        "create, idempotently, the queue, DLQ, tables, EventBridge rule and queue policy",
    )
    demo = commands.add_parser(
        "demo",
        help="run everything on an embedded AWS emulator and show what lands",
        description="Start an embedded AWS emulator, bootstrap it, run the daemon, publish a "
        "realistic ECS event stream through EventBridge and summarise what landed. "
        "No Docker, no AWS account.",
    )
    demo.add_argument("--events", type=int, default=200, help="size of the stream (default 200)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the stream")
    demo.add_argument("--workers", type=int, default=4, help="worker threads (default 4)")
    demo.add_argument("--port", type=int, default=9108, help="metrics port (default 9108)")
    demo.add_argument(
        "--keep-running", action="store_true", help="keep the daemon and /metrics up until Ctrl-C"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument("--verbose", action="store_true", help="show the daemon's logs")
    sim = command(
        "simulate", "publish simulated ECS events (through EventBridge by default) at a steady rate"
    )
    sim.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
    sim.add_argument("--events", type=int, default=0, help="stop after N events (0: run forever)")
    sim.add_argument("--seed", type=int, default=0, help="random seed of the stream")
    sim.add_argument(
        "--via",
        choices=("eventbridge", "sqs"),
        default="eventbridge",
        help="eventbridge: each event's first copy by PutEvents on the bus (emulators, "
        "LocalStack), redeliveries and service events straight to sqs.queue_url, so duplicates "
        "keep their event id as ECS's do; sqs: everything by SendMessage "
        "(real AWS refuses aws.* sources in PutEvents)",
    )
    report = command("report", "per service: tasks that never started, why, and what runs")
    report.add_argument("--hours", type=float, default=24.0, help="window for failed starts")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument("--account", type=_checked(account_of), help="only this account id")
    report.add_argument("--region", type=_checked(region_of), help="only this region")
    task = command("task", "one task's life from its item: phases, containers, exit codes, cause")
    task.add_argument(
        "task",
        type=_task_ref,
        help="the task's ARN (one GetItem), or its id or cluster/id: then the task table is "
        "scanned until the task is found (half the table on average, one read unit per 8 KB "
        "read; give the ARN on a large table)",
    )
    task.add_argument("--json", action="store_true", help="machine-readable output")
    reconcile = command(
        "reconcile", "align the task table with what the ECS API knows (dry run by default)"
    )
    reconcile.add_argument(
        "--cluster", action="append", default=[], help="cluster name or ARN (default: all)"
    )
    reconcile.add_argument("--apply", action="store_true", help="write the fixes")
    command("check-config", "validate and print the effective configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = {
        "run": _run,
        "bootstrap": _bootstrap,
        "demo": _demo,
        "simulate": _simulate,
        "report": _report,
        "reconcile": _reconcile,
        "task": _task,
        "check-config": _check_config,
    }[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        return config_error(str(exc), exc.log_format)
    except NoRegionError:
        return config_error(NO_REGION, _log_format(args))
    except NoCredentialsError:
        print(f"ecswatch: {args.command}: {NO_CREDENTIALS}", file=sys.stderr)
        return EXIT_FATAL
    except (ConnectionError, HTTPClientError) as exc:
        return _unreachable(args.command, exc)
    except ClientError as exc:
        return _aws_failure(args.command, exc)


def config_error(message: str, log_format: str = "auto") -> int:
    """Exit 2 with one line naming the key: a JSON log line wherever the logs are JSON lines."""
    if renders_json(log_format, sys.stderr):
        configure_logging("INFO", "json")
        structlog.get_logger("ecswatch").error("configuration_error", error=message)
    else:
        print(f"ecswatch: configuration error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _log_format(args: argparse.Namespace) -> str:
    try:
        return _load(args, require_queue=False).log.format
    except ConfigError as exc:
        return exc.log_format


def _load(args: argparse.Namespace, *, require_queue: bool = True) -> Config:
    return load_config(args.config, require_queue=require_queue)


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(describe(config), end="")
    print("# configuration OK", file=sys.stderr)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from ecswatch.daemon.app import Daemon  # noqa: PLC0415 (boto3 wiring only for the daemon)

    config = _load(args)
    configure_logging(config.log.level, config.log.format, cache=True)
    try:
        return Daemon(config).run()
    except (NoRegionError, ConfigError):
        raise
    except Exception:
        structlog.get_logger("ecswatch").exception("fatal_error")
        return EXIT_FATAL


def _bootstrap(args: argparse.Namespace) -> int:
    from ecswatch.commands.bootstrap import BootstrapError, bootstrap  # noqa: PLC0415
    from ecswatch.daemon.aws.clients import bootstrap_clients  # noqa: PLC0415

    config = _load(args, require_queue=False)
    clients = bootstrap_clients(config.aws)
    try:
        result = bootstrap(config, **clients)
    except BootstrapError as exc:
        print(f"ecswatch: bootstrap: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except ClientError as exc:
        return _aws_failure("bootstrap", exc)
    for change in result.changes:
        print(change)
    print(
        "\nConfigure the daemon with:\n"
        f"  ECSWATCH_SQS_QUEUE_URL={result.queue_url}\n"
        f"  ECSWATCH_SQS_DEAD_LETTER_QUEUE_URL={result.dead_letter_queue_url}"
    )
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from ecswatch.dev.emulator import require_moto  # noqa: PLC0415

    try:
        require_moto()
    except ModuleNotFoundError as exc:
        # The one line a newcomer needs after a plain `pip install ecswatch`: no traceback.
        print(
            f"ecswatch: demo needs the embedded AWS emulator ({exc.name} is not installed): "
            "pip install 'ecswatch[demo]'",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from ecswatch.dev.demo import run_demo  # noqa: PLC0415

    return run_demo(
        events=args.events,
        seed=args.seed,
        workers=args.workers,
        port=args.port,
        keep_running=args.keep_running,
        as_json=args.json,
        verbose=args.verbose,
    )


def _simulate(args: argparse.Namespace) -> int:
    import functools  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from ecswatch.daemon.aws.clients import make_client  # noqa: PLC0415
    from ecswatch.dev.publish import (  # noqa: PLC0415
        EventBridgeRoute,
        put_events,
        send_messages,
        simulate,
    )

    if args.rate <= 0:
        return config_error("--rate: must be positive", _log_format(args))
    config = _load(args)
    sqs = make_client("sqs", config.aws)

    def to_queue(envelopes: Sequence[dict[str, Any]]) -> int:
        return send_messages(sqs, config.sqs.queue_url, [json.dumps(e) for e in envelopes])

    publish: Callable[[Sequence[dict[str, Any]]], int] = to_queue
    if args.via == "eventbridge":
        events = make_client("events", config.aws)
        bus = functools.partial(put_events, events, bus=config.bootstrap.event_bus_name)
        publish = EventBridgeRoute(bus, to_queue)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}

    def report(published: int, refused: int) -> None:
        print(f"published {published} events ({refused} refused)", flush=True)

    try:
        _, refused = simulate(
            publish=publish,
            rate=args.rate,
            total=args.events,
            seed=args.seed,
            stop=stop,
            report=report,
        )
    except ClientError as exc:
        return _aws_failure("simulate", exc)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return EXIT_OK if refused == 0 else EXIT_FATAL


def _checked(parse: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a domain.arns validator: a bad value exits 2 naming the option."""

    def check(text: str) -> str:
        if not parse(text):
            raise argparse.ArgumentTypeError(f"not a valid {parse.__name__[:-3]}: {text!r}")
        return text

    return check


def _report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from ecswatch.commands.report import build_report, render  # noqa: PLC0415
    from ecswatch.daemon.aws.clients import make_client  # noqa: PLC0415

    config = _load(args, require_queue=False)
    dynamodb = make_client("dynamodb", config.aws)
    try:
        report = build_report(
            dynamodb,
            config,
            hours=args.hours,
            now=datetime.now(UTC),
            account=args.account,
            region=args.region,
        )
    except ClientError as exc:
        return _aws_failure("report", exc)
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return EXIT_OK


def _task_ref(text: str) -> str:
    from ecswatch.commands.task import task_ref  # noqa: PLC0415

    try:
        return task_ref(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _task(args: argparse.Namespace) -> int:
    from ecswatch.commands.task import find_task, life_of, render  # noqa: PLC0415
    from ecswatch.daemon.aws.clients import make_client  # noqa: PLC0415

    config = _load(args, require_queue=False)
    table = config.dynamodb.task_table
    item = find_task(make_client("dynamodb", config.aws), table, args.task)
    if item is None:
        print(f"ecswatch: task: no task {args.task} in table {table}", file=sys.stderr)
        return EXIT_FATAL
    life = life_of(item)
    print(json.dumps(life.as_dict(), indent=2) if args.json else render(life))
    return EXIT_OK


def _reconcile(args: argparse.Namespace) -> int:
    from ecswatch.commands.reconcile import reconcile  # noqa: PLC0415
    from ecswatch.daemon.aws.clients import make_client  # noqa: PLC0415

    config = _load(args, require_queue=False)
    ecs, dynamodb = make_client("ecs", config.aws), make_client("dynamodb", config.aws)
    try:
        tally = reconcile(
            ecs, dynamodb, config, args.cluster, apply=args.apply,
            report=lambda fix, result: print(fix),
        )  # fmt: skip
    except ClientError as exc:
        return _aws_failure("reconcile", exc)
    planned = sum(tally.fixes.values())
    if not args.apply:
        print(f"{planned} fix(es) planned; dry run: nothing written (--apply writes them)")
        return EXIT_OK
    written = ", ".join(f"{k} {v}" for k, v in sorted(tally.written.items()))
    print("written: " + (written or "nothing"))
    return EXIT_OK


#: what an operator checks, by errors.systemic_reason
AWS_HINTS = {
    "access_denied": "check the IAM policy of the task role or user (and KMS key policies)",
    "credentials": "check the credentials (expired token, wrong keys, clock skew)",
    "missing_resource": "check the names in the configuration, the region, or run bootstrap",
    "throttling": "AWS is throttling: try again later or raise the limits",
    "unavailable": "AWS answers 5xx: try again later",
}


def _aws_failure(command: str, exc: ClientError) -> int:
    """One line for AWS refusing a call: the call, the code, AWS's words, what to check."""
    from ecswatch.daemon.aws.errors import systemic_reason  # noqa: PLC0415

    error = exc.response.get("Error", {})
    hint = AWS_HINTS.get(systemic_reason(exc) or "")
    print(
        f"ecswatch: {command}: {exc.operation_name} failed: {error.get('Code')}: "
        f"{error.get('Message')}" + (f" ({hint})" if hint else ""),
        file=sys.stderr,
    )
    return EXIT_FATAL


def _unreachable(command: str, exc: Exception) -> int:
    """One line for an endpoint that cannot be reached: the service, the endpoint, what to check."""
    endpoint = str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    service = host.split(".", 1)[0] if host.endswith("amazonaws.com") else "AWS"
    print(
        f"ecswatch: {command}: cannot reach {service} at {endpoint or 'its endpoint'} "
        f"({type(exc).__name__}): check aws.endpoint_url / AWS_ENDPOINT_URL_<SERVICE>, "
        "the region, the network and any proxy",
        file=sys.stderr,
    )
    return EXIT_FATAL
