"""`ecswatch demo`: an embedded emulator, bootstrap, the daemon, a realistic stream, a summary."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from ecswatch.commands.bootstrap import bootstrap
from ecswatch.commands.report import build_report
from ecswatch.config import Config, load_config, override
from ecswatch.daemon.app import Daemon
from ecswatch.daemon.aws.clients import bootstrap_clients
from ecswatch.daemon.pipeline.queue import REASON_ATTRIBUTE
from ecswatch.daemon.state.dynamo import scan
from ecswatch.dev.publish import EventBridgeRoute, put_events, send_messages
from ecswatch.dev.simulate import MALFORMED_BODY, Stream, generate
from ecswatch.logging import configure_logging

# (counter, its label, the Summary and Truth field): each service event counted once per id.
COUNTED_SERVICE_EVENTS = (
    ("ecswatch_service_events_total", "event_name", "service_events"),
    ("ecswatch_deployments_total", "state", "deployments"),
)
EVENTS_PER_TASK = 6.5  # a stream of N events holds about N / 6.5 task lifecycles
REGION = "us-east-1"


@dataclass
class Summary:
    delivery: str
    published: int
    tasks_by_status: dict[str, int] = field(default_factory=dict)
    container_instances_by_status: dict[str, int] = field(default_factory=dict)
    failed_starts: dict[str, int] = field(default_factory=dict)  # "cluster group stop_code"
    failed_start_reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    impaired_services: list[str] = field(default_factory=list)
    service_events: dict[str, int] = field(default_factory=dict)  # "cluster/service eventName"
    deployments: dict[str, int] = field(default_factory=dict)  # "cluster/service state"
    outcomes: dict[str, int] = field(default_factory=dict)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    metrics_url: str = ""
    matches_truth: bool = False
    mismatches: list[str] = field(default_factory=list)


def demo_config(endpoint_url: str, port: int, workers: int) -> Config:
    return load_config(
        None,
        {
            "ECSWATCH_AWS_ENDPOINT_URL": endpoint_url,
            "ECSWATCH_AWS_REGION": REGION,
            "ECSWATCH_SQS_WAIT_TIME_SECONDS": "1",
            "ECSWATCH_WORKERS_COUNT": str(workers),
            "ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT": "10",
            "ECSWATCH_METRICS_HOST": "127.0.0.1",
            "ECSWATCH_METRICS_PORT": str(port),
        },
        require_queue=False,
    )


class Demo:
    def __init__(self, out: TextIO, *, events: int, seed: int, workers: int, port: int) -> None:
        self.out = out
        self.events = events
        self.seed = seed
        self.workers = workers
        self.port = port
        self.tty = out.isatty()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self, *, keep_running: bool = False, as_json: bool = False) -> int:
        from ecswatch.dev.emulator import Emulator  # noqa: PLC0415 (moto: the demo extra)

        # The demo never talks to AWS: fake credentials, so no real ones reach the emulator.
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo")  # noqa: S106
        with Emulator() as emulator:
            self.say(f"▸ embedded AWS emulator (moto) on {emulator.url}")
            summary, daemon = self._run(emulator.url)
            try:
                if as_json:
                    print(json.dumps(dataclasses.asdict(summary), indent=2), flush=True)
                else:
                    self._print(summary)
                if keep_running:
                    self.say("▸ still running: Ctrl-C to stop")
                    _wait_for_interrupt()
            finally:
                daemon.stop()
        return 0 if summary.matches_truth else 1

    def _run(self, endpoint_url: str) -> tuple[Summary, Daemon]:
        config = demo_config(endpoint_url, self.port, self.workers)
        clients = bootstrap_clients(config.aws)
        resources = bootstrap(config, **clients)
        created = sum(change.action == "created" for change in resources.changes)
        self.say(f"▸ bootstrap: {created} of {len(resources.changes)} resources created")
        config = resources.configure(config)
        daemon = _start_daemon(config)
        self.say(f"▸ ecswatch running: {self.workers} workers, metrics on {_url(daemon)}/metrics")
        stream = generate(
            tasks=max(4, round(self.events / EVENTS_PER_TASK)),
            copies=2,
            seed=self.seed,
            with_service_events=True,
        )
        delivery = self._publish(stream, clients, resources.queue_url, config)
        send_messages(clients["sqs"], resources.queue_url, [MALFORMED_BODY])
        self.say("▸ sent 1 malformed message straight to SQS (EventBridge only carries JSON)")
        expected = len(stream.envelopes) + 1
        self._wait(daemon, clients["sqs"], resources.queue_url, expected)
        summary = self._summarize(daemon, clients, config, stream, delivery)
        summary.dead_letters = _dead_letters(clients["sqs"], resources.dead_letter_queue_url)
        return summary, daemon

    def _publish(
        self, stream: Stream, clients: dict[str, Any], queue_url: str, config: Config
    ) -> str:
        envelopes = stream.envelopes
        n_tasks = sum(stream.truth.tasks_by_status().values())
        self.say(
            f"▸ publishing {len(envelopes)} ECS events ({n_tasks} tasks, every event twice, "
            "shuffled):\n  first copies by EventBridge PutEvents, redeliveries (same event id) "
            "and service events straight to SQS"
        )
        bus_name = config.bootstrap.event_bus_name

        def bus(batch: Sequence[dict[str, Any]]) -> int:
            return put_events(clients["events"], batch, bus_name)

        def queue(batch: Sequence[dict[str, Any]]) -> int:
            return send_messages(clients["sqs"], queue_url, [json.dumps(e) for e in batch])

        route = EventBridgeRoute(bus, queue)
        # Probe EventBridge with the first copies of the head alone, before anything else queues.
        head, rest = route.split(envelopes[:20])
        if bus(head) == 0 and (not head or _arrives(clients["sqs"], queue_url)):
            queue(rest)
            for start in range(0, len(envelopes) - 20, 10):
                route(envelopes[20 + start : 30 + start])
            return "EventBridge PutEvents → rule → SQS; redeliveries straight to SQS"
        self.say("! EventBridge did not deliver to the queue: falling back to SQS SendMessage")
        queue(head + rest + envelopes[20:])
        return "SQS SendMessage (EventBridge fallback)"

    def _wait(self, daemon: Daemon, sqs: Any, queue_url: str, expected: int) -> None:
        registry = daemon.metrics.registry
        deadline = time.monotonic() + 60 + expected / 5
        last_line = 0.0
        while time.monotonic() < deadline:
            done = _processed(registry)
            if done >= expected and _depth(sqs, queue_url) == 0:
                break
            if self.tty or time.monotonic() - last_line > 2:
                end = "\r" if self.tty else "\n"
                print(
                    f"  processed {int(done)}/{expected} messages",
                    end=end,
                    file=self.out,
                    flush=True,
                )
                last_line = time.monotonic()
            time.sleep(0.25)
        self.say(f"  processed {int(_processed(registry))}/{expected} messages   ")

    def _summarize(
        self, daemon: Daemon, clients: dict[str, Any], config: Config, stream: Stream, delivery: str
    ) -> Summary:
        registry = daemon.metrics.registry
        fields = ("taskArn", "containerInstanceArn", "version", "lastStatus", "status")
        tasks = list(scan(clients["dynamodb"], config.dynamodb.task_table, fields))
        instances = list(
            scan(clients["dynamodb"], config.dynamodb.container_instance_table, fields)
        )
        summary = Summary(
            delivery=delivery,
            published=len(stream.envelopes),
            metrics_url=f"{_url(daemon)}/metrics",
        )
        summary.tasks_by_status = dict(collections.Counter(i["lastStatus"] for i in tasks))
        summary.container_instances_by_status = dict(
            collections.Counter(i["status"] for i in instances)
        )
        for metric in registry.collect():
            for sample in metric.samples:
                labels = sample.labels
                if sample.name == "ecswatch_tasks_pending_to_stopped_total" and sample.value:
                    key = f"{labels['cluster']} {labels['group']} {labels['stop_code']}"
                    summary.failed_starts[key] = int(sample.value)
                if sample.name == "ecswatch_events_total" and sample.value:
                    outcome = labels["outcome"]
                    summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + int(sample.value)
                if sample.name == "ecswatch_service_task_start_impaired" and sample.value:
                    summary.impaired_services.append(f"{labels['cluster']}/{labels['service']}")
                for counter, kind, into in COUNTED_SERVICE_EVENTS:
                    if sample.name == counter and sample.value:
                        key = f"{labels['cluster']}/{labels['service']} {labels[kind]}"
                        getattr(summary, into)[key] = int(sample.value)
        report = build_report(clients["dynamodb"], config, hours=24, now=datetime.now(UTC))
        summary.failed_start_reasons = {
            s.group: s.reasons for s in report.services if s.failed_to_start
        }
        stored = {
            i.get("taskArn") or i["containerInstanceArn"]: int(i["version"])
            for i in tasks + instances
        }
        truth = {arn: version for arn, (version, _) in stream.truth.final.items()}
        if stored != truth:
            wrong = sum(stored.get(arn) != v for arn, v in truth.items())
            summary.mismatches.append(f"{wrong} ARNs do not hold their highest version")
        expected = {f"{c} {g} {s}": n for (c, g, s), n in stream.truth.failed_starts.items()}
        if summary.failed_starts != expected:
            summary.mismatches.append(f"PENDING→STOPPED {summary.failed_starts} != {expected}")
        impaired = sorted(name for name, yes in stream.truth.impaired.items() if yes)
        if sorted(summary.impaired_services) != impaired:
            summary.mismatches.append(f"impaired {summary.impaired_services} != {impaired}")
        for _, _, into in COUNTED_SERVICE_EVENTS:
            want = {f"{c}/{s} {n}": k for (c, s, n), k in getattr(stream.truth, into).items()}
            if getattr(summary, into) != want:
                summary.mismatches.append(f"{into} {getattr(summary, into)} != {want}")
        summary.matches_truth = not summary.mismatches
        return summary

    def _print(self, s: Summary) -> None:
        say = self.say
        say()
        say(f"Delivery:  {s.delivery}")
        say("Outcomes:  " + ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())))
        say("Tasks by last status:")
        for status, count in sorted(s.tasks_by_status.items(), key=lambda kv: -kv[1]):
            say(f"  {status:<14} {count}")
        say(
            "Container instances: "
            + ", ".join(f"{k} {v}" for k, v in sorted(s.container_instances_by_status.items()))
        )
        say("Tasks that went PENDING → STOPPED (ECS throttles launches of these services):")
        for key, count in sorted(s.failed_starts.items()):
            cluster, group, stop_code = key.split(" ")
            reasons = ", ".join(
                f"{r} ×{n}" for r, n in s.failed_start_reasons.get(group, {}).items()
            )
            service = f"{cluster}/{group.removeprefix('service:')}"
            say(f"  {service:<16} {count:>3}  {stop_code}: {reasons}")
        say(
            "Services ECS reports unable to start tasks (SERVICE_TASK_START_IMPAIRED): "
            + (", ".join(sorted(s.impaired_services)) or "none")
        )
        say(
            "Service events (each once, however often delivered): "
            + f"{sum(s.service_events.values())} actions, {sum(s.deployments.values())} "
            + "deployment changes"
        )
        say(f"Dead-letter queue: {len(s.dead_letters)} message(s)")
        for dead in s.dead_letters:
            say(f"  reason={dead['reason']}  body={dead['body'][:60]!r}")
        verdict = (
            "✓ every ARN holds its highest version; failed-start and service-event counts match"
            if s.matches_truth
            else ("✗ " + "; ".join(s.mismatches))
        )
        say(verdict)
        say(f"Metrics:   {s.metrics_url}")


def _start_daemon(config: Config) -> Daemon:
    try:
        daemon = Daemon(config, CollectorRegistry())
    except OSError:  # the metrics port is taken: any free port will do for a demo
        config = override(config, metrics={"port": 0})
        daemon = Daemon(config, CollectorRegistry())
    daemon.start()
    return daemon


def _url(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.http.port}"


def _depth(sqs: Any, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _arrives(sqs: Any, queue_url: str, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _depth(sqs, queue_url):
            return True
        time.sleep(0.1)
    return False


def _processed(registry: CollectorRegistry) -> float:
    return sum(
        s.value for m in registry.collect() for s in m.samples if s.name == "ecswatch_events_total"
    )


def _dead_letters(sqs: Any, url: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            reason = m.get("MessageAttributes", {}).get(REASON_ATTRIBUTE, {}).get("StringValue", "")
            found.append({"reason": reason, "body": m["Body"]})


def _wait_for_interrupt() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def run_demo(
    *,
    events: int = 200,
    seed: int = 0,
    workers: int = 4,
    port: int = 9108,
    keep_running: bool = False,
    as_json: bool = False,
    verbose: bool = False,
) -> int:
    # Dead-lettering the malformed message is the demo's point, not a warning worth a log line.
    configure_logging("INFO" if verbose else "ERROR", "auto")
    # With --json, stdout carries only the summary; the narration goes to stderr.
    out = sys.stderr if as_json else sys.stdout
    demo = Demo(out, events=events, seed=seed, workers=workers, port=port)
    return demo.run(keep_running=keep_running, as_json=as_json)
