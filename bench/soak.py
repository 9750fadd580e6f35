"""Soak: ~100k events through one `ecswatch run` process; records its RSS over time.

    .venv/bin/python bench/soak.py [--events 100000] [--workers 4]

The emulator (moto's server) runs in this process, the daemon in a subprocess whose RSS is read
from /proc. A paced producer keeps the queue shallow (moto's SQS slows with depth). Prints a
table and writes bench/results/soak.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ecswatch.commands.bootstrap import bootstrap
from ecswatch.config import load_config
from ecswatch.daemon.aws.clients import bootstrap_clients
from ecswatch.dev.emulator import Emulator
from ecswatch.dev.publish import send_messages
from ecswatch.dev.simulate import generate

BACKLOG = 60  # messages published but not yet processed: moto SQS slows with depth


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processed(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ecswatch_events_total"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sample-seconds", type=float, default=15)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION="us-east-1"
    )
    with Emulator() as emulator:
        config = load_config(None, {"ECSWATCH_AWS_ENDPOINT_URL": emulator.url}, require_queue=False)
        clients = bootstrap_clients(config.aws)
        resources = bootstrap(config, **clients)
        port = 9300 + os.getpid() % 500
        env = {
            **os.environ,
            "ECSWATCH_AWS_ENDPOINT_URL": emulator.url,
            "ECSWATCH_AWS_REGION": "us-east-1",
            "ECSWATCH_SQS_QUEUE_URL": resources.queue_url,
            "ECSWATCH_SQS_DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
            "ECSWATCH_SQS_WAIT_TIME_SECONDS": "1",
            "ECSWATCH_WORKERS_COUNT": str(args.workers),
            "ECSWATCH_METRICS_HOST": "127.0.0.1",
            "ECSWATCH_METRICS_PORT": str(port),
            "ECSWATCH_LOG_FORMAT": "json",
        }
        with open(os.devnull, "w") as devnull:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "ecswatch", "run"], env=env, stderr=devnull
            )
        try:
            time.sleep(2)
            samples = run(daemon.pid, port, clients["sqs"], resources.queue_url, args)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    print(f"{'t (s)':>7} {'events':>8} {'ev/s':>6} {'RSS MiB':>8} {'CPU s':>7}")
    for s in samples:
        print(
            f"{s['t']:7.0f} {s['processed']:8.0f} {s['rate']:6.0f} {s['rss_mib']:8.1f} {s['cpu_s']:7.1f}"
        )
    first = next((s for s in samples if s["processed"] >= args.events * 0.1), samples[0])
    growth = samples[-1]["rss_mib"] - first["rss_mib"]
    print(
        f"RSS after 10% of the run: {first['rss_mib']:.1f} MiB; at the end: {samples[-1]['rss_mib']:.1f} MiB "
        f"({growth:+.1f} MiB over {samples[-1]['processed'] - first['processed']:.0f} events)"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(
        json.dumps({"events": args.events, "samples": samples}, indent=2)
    )
    return 0


def run(
    pid: int, port: int, sqs: object, queue_url: str, args: argparse.Namespace
) -> list[dict[str, float]]:
    samples: list[dict[str, float]] = []
    started = last_sample = time.monotonic()
    published = round_number = 0
    last_done = 0.0
    pending: list[str] = []
    while True:
        done = processed(port)
        if published < args.events and published - done < BACKLOG:
            if not pending:
                pending = generate(
                    tasks=20, container_instances=1, copies=1, seed=round_number
                ).bodies()
                round_number += 1
            batch, pending = pending[:50], pending[50:]
            send_messages(sqs, queue_url, batch)
            published += len(batch)
        else:
            time.sleep(0.2)
        now = time.monotonic()
        finished = published >= args.events and done >= published
        if now - last_sample >= args.sample_seconds or finished:
            samples.append(
                {
                    "t": now - started,
                    "processed": done,
                    "rate": (done - last_done) / (now - last_sample),
                    "rss_mib": rss_mib(pid),
                    "cpu_s": cpu_seconds(pid),
                }
            )
            print(
                f"  t={now - started:5.0f}s processed={done:.0f} "
                f"rss={samples[-1]['rss_mib']:.1f}MiB",
                flush=True,
            )
            last_sample, last_done = now, done
        if finished:
            return samples


if __name__ == "__main__":
    raise SystemExit(main())
