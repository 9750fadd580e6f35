"""The `ecswatch` command line: thin, forwards to the modules that do the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import structlog
from botocore.exceptions import NoRegionError

from ecswatch import __version__
from ecswatch.config import Config, ConfigError, describe, load_config
from ecswatch.logging import configure_logging

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2

NO_REGION = (
    "aws.region: no AWS region configured (set aws.region, ECSWATCH_AWS_REGION or AWS_REGION)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecswatch",
        description="Exact ECS task and container-instance state from EventBridge, via SQS, "
        "into DynamoDB, with Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"ecswatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--config", metavar="PATH", help="TOML file (default: $ECSWATCH_CONFIG)")
        return sub

    command("run", "run the daemon until SIGTERM/SIGINT")
    command("check-config", "validate and print the effective configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = {
        "run": _run,
        "check-config": _check_config,
    }[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        return config_error(str(exc))
    except NoRegionError:
        return config_error(NO_REGION)


def config_error(message: str) -> int:
    print(f"ecswatch: configuration error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _load(args: argparse.Namespace, *, require_queue: bool = True) -> Config:
    return load_config(args.config, require_queue=require_queue)


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(describe(config), end="")
    print("# configuration OK", file=sys.stderr)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from ecswatch.app import Daemon  # noqa: PLC0415 (boto3 wiring only for the daemon)

    config = _load(args)
    configure_logging(config.log.level, config.log.format)
    try:
        return Daemon(config).run()
    except NoRegionError:
        raise
    except Exception:
        structlog.get_logger("ecswatch").exception("fatal_error")
        return EXIT_FATAL
