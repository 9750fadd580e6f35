"""ecswatch at the scale of an organization: one table of figures per size.

    nice .venv/bin/python bench/scale.py                # 500 and 5,000 services (~15 min)
    .venv/bin/python bench/scale.py --quick             # a smoke run (tests/test_bench.py)

For each size: the organization (bench/scale_org.py) is seeded into the emulator's tables
(ecswatch/dev/emulator.py, moto in this process), then a real replica (`ecswatch run`, its own
process, reconciliation off) receives each service's events through SQS (fastaws when node has
it, else the emulator's SQS) and writes them to the emulator's DynamoDB. Figures:
- /metrics: bytes, series and time per scrape (5 scrapes over HTTP), after every event went
  through; the replica's RSS then (VmRSS) and its peak (VmHWM);
- the service table read for the gauges: items and bytes of one rescan, the read units it costs
  as DynamoDB charges a Scan (item sizes summed per 1 MB page, 4 KB units, halved: eventually
  consistent), and the RCU/s per replica at the default refresh, before (a rescan every 30 s)
  and now (every 300 s, plus one journal GetItem per 10 s bucket);
- at the largest size, a reconciliation pass (the daemon's Reconciler.run_pass, its own
  process, at the default 5 ECS calls/s) over the clusters the emulator's ECS runs, then again
  with 40,000 more STOPPED tasks in the table: ECS and DynamoDB calls, seconds in calls (the
  emulator's time and botocore's), peak RSS;
- `ecswatch report` and `ecswatch task` (by id: a Scan to the first match; by ARN: GetItem)
  on the stored tasks, before and after those 40,000: seconds and peak RSS.
Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scale_org
from compare import (
    PY,
    RESULTS,
    Bench,
    Feeder,
    drained,
    emulator,
    find_fastaws,
    free_port,
    reap,
    wait_url,
)
from scale_org import Org
from scale_report import print_goals, print_growth, print_machine, print_row

from ecswatch.config import Config, override
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.expose import preflight
from ecswatch.dev.emulator import Emulator

OLD_REFRESH, RESCAN, BUCKET = 30.0, 300.0, 10.0  # seconds, at the default refresh
SLOW = 300  # the bench's own read timeout: moto answers slowly on a busy machine


def environment(config: Config, sqs_url: str, dynamodb_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL_SQS": sqs_url,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_ECS": dynamodb_url,
        "ECSWATCH_AWS_REGION": "us-east-1",
        "ECSWATCH_SQS_QUEUE_URL": config.sqs.queue_url,
        "ECSWATCH_SQS_DEAD_LETTER_QUEUE_URL": config.sqs.dead_letter_queue_url,
        **{
            f"ECSWATCH_{key.replace('.', '_').upper()}": table
            for key, table, _ in preflight.tables(config)
        },
    }


def proc_status(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def replica(env: dict[str, str], sqs: Any, bodies: list[str]) -> dict[str, float]:
    """One `ecswatch run` (default settings, reconciliation off) through which `bodies` go."""
    port = free_port()
    env = {**env, "ECSWATCH_METRICS_HOST": "127.0.0.1", "ECSWATCH_METRICS_PORT": str(port),
           "ECSWATCH_RECONCILE_INTERVAL_SECONDS": "0", "ECSWATCH_SQS_WAIT_TIME_SECONDS": "1",
           "ECSWATCH_LOG_FORMAT": "json", "ECSWATCH_LOG_LEVEL": "WARNING"}  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([PY, "-m", "ecswatch", "run"], env=env, stderr=log, text=True)
        wait_url(f"http://127.0.0.1:{port}/healthz")
        feeder = Feeder(sqs, env["ECSWATCH_SQS_QUEUE_URL"], bodies, backlog=400)
        started = time.monotonic()
        feeder.start()
        drained(feeder, proc, log)
        seconds = time.monotonic() - started
        scrapes, zipped, text = [], [], b""
        for encoding in ("identity",) * 5 + ("gzip",) * 3:  # Prometheus asks for gzip
            request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                             headers={"Accept-Encoding": encoding})  # fmt: skip
            begun = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as r:
                body = r.read()
            (scrapes if encoding == "identity" else zipped).append(time.perf_counter() - begun)
            text = body if encoding == "identity" else text  # the last plain one
        memory = proc_status(proc.pid)
        proc.send_signal(signal.SIGTERM)
        reap(proc)
    lines = text.decode().splitlines()
    families: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
                name = name.removesuffix(suffix)
            family = families.setdefault(name, {"series": 0, "bytes": 0, "per": "replica"})
            family["series"] += 1
            family["bytes"] += len(line) + 1
            if 'cluster="' in line and ('service="' in line or 'group="service:' in line):
                family["per"] = "service"
            elif 'cluster="' in line and family["per"] == "replica":
                family["per"] = "cluster"
    return {
        "families": dict(sorted(families.items())),
        "events": len(bodies),
        "events_per_second": len(bodies) / seconds,
        "metrics_bytes": len(text),
        "metrics_gzip_bytes": len(body),
        "scrape_seconds_gzip_median": sorted(zipped)[len(zipped) // 2],
        "series": sum(1 for line in lines if line and not line.startswith("#")),
        "scrape_seconds_median": sorted(scrapes)[len(scrapes) // 2],
        "scrape_seconds_max": max(scrapes),
        "rss_mib": memory["VmRSS"],
        "peak_rss_mib": memory["VmHWM"],
    }


def item_bytes(value: Any, name: str = "") -> int:
    """DynamoDB's size of an attribute (name + value), as its docs count it."""
    (kind, inner), *_ = value.items()
    size = len(name.encode())
    if kind in ("S", "B"):
        return size + len(str(inner).encode())
    if kind == "N":
        return size + math.ceil(len(str(inner).lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return size + 1
    if kind == "M":
        return size + 3 + sum(item_bytes(v, k) + 1 for k, v in inner.items())
    return size + 3 + sum(item_bytes(v) + 1 for v in inner)  # L, SS, NS


def rescan_cost(dynamodb: Any, table: str) -> dict[str, float]:
    """What one full Scan of `table` reads and costs (eventually consistent)."""
    items = size = 0
    units = 0.0
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        page_bytes = sum(sum(item_bytes(v, k) for k, v in i.items()) for i in page["Items"])
        items, size = items + len(page["Items"]), size + page_bytes
        units += math.ceil(page_bytes / 4096) / 2
    journal_get = 0.5  # one GetItem of a journal slot under 4 KB, eventually consistent
    return {
        "items": items,
        "bytes": size,
        "rcu_per_rescan": units,
        "rcu_per_second_before": units / OLD_REFRESH,
        "rcu_per_second_now": units / RESCAN + journal_get / BUCKET,
    }


def reconcile_pass(env: dict[str, str], clusters: list[str], rate: float) -> dict[str, Any]:
    """The daemon's own pass in a child process (bench/scale_pass.py): its figures."""
    env = {**env, "ECSWATCH_RECONCILE_CLUSTERS": ",".join(clusters),
           "ECSWATCH_RECONCILE_MAX_API_CALLS_PER_SECOND": str(rate)}  # fmt: skip
    out = subprocess.run([PY, str(ROOT / "bench" / "scale_pass.py")], env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    if not out.stdout.strip():
        raise RuntimeError(f"the pass failed: {out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]), rate=rate)


def command(env: dict[str, str], *argv: str) -> dict[str, float]:
    """An ecswatch command's wall and CPU seconds (the rest is mostly the emulator's) and peak
    RSS: its VmHWM, read until it exits (rusage's maxrss would count the pages a fork shares
    with this process before exec)."""
    started, peak = time.monotonic(), 0.0
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([PY, "-m", "ecswatch", *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
        while True:
            with contextlib.suppress(OSError, KeyError, ValueError):  # a zombie shows none
                peak = max(peak, proc_status(proc.pid)["VmHWM"])
            done, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"ecswatch {argv[0]} exited {proc.returncode}: {errors.read()}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": time.monotonic() - started, "cpu_seconds": cpu, "peak_rss_mib": peak}


def attempt(measure: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """A measurement, or why it failed: a long run keeps its other figures."""
    try:
        return measure(*args)
    except Exception as exc:
        print(f"  {measure.__name__}{args[1:]} failed: {exc}", file=sys.stderr, flush=True)
        return {"error": str(exc)[-500:]}


def run_size(emu: Emulator, sqs_url: str, org: Org, large: dict[str, int] | None) -> dict[str, Any]:
    emu.reset()
    bench = Bench(sqs_url, emu.url, 0, 400)
    config = bench.fresh()
    env = environment(config, sqs_url, emu.url)
    aws = override(config, aws={"endpoint_url": emu.url}).aws
    dynamodb = make_client("dynamodb", aws, read_timeout=SLOW)
    clusters = org.clusters()[: large["ecs_clusters"]] if large else []
    ecs_arns = {}
    if clusters:
        ecs, ec2 = (make_client(name, aws, read_timeout=SLOW) for name in ("ecs", "ec2"))
        ecs_arns = scale_org.build_ecs(ecs, ec2, org, clusters)
    tables = scale_org.table_names(config)
    stored = scale_org.put_items(dynamodb, tables["task"], scale_org.task_items(org, ecs_arns))
    scale_org.put_items(dynamodb, tables["service"], scale_org.service_items(org))
    emu.injector.requests.clear()
    row: dict[str, Any] = {"services": org.services, "stored_tasks": stored}
    row["replica"] = replica(env, bench.clients["sqs"], scale_org.stream(org))
    reads = emu.injector.requests
    row["replica"]["dynamodb_reads"] = {
        k.split(".", 1)[1]: v for k, v in reads.items() if k.endswith(("Scan", "GetItem"))
    }
    row["gauges_read"] = rescan_cost(dynamodb, tables["service"])
    arn = dynamodb.scan(TableName=tables["task"], Limit=1)["Items"][0]["taskArn"]["S"]
    row["report"] = attempt(command, env, "report")
    row["task_by_arn"] = attempt(command, env, "task", arn)
    row["task_by_id"] = attempt(command, env, "task", arn.rsplit("/", 1)[1])
    if large:
        row["passes"] = [dict(attempt(reconcile_pass, env, clusters, large["rate"]),
                              stored_tasks=stored)]  # fmt: skip
        more = Org(org.services, max(1, large["stopped"] // org.services))
        stored += scale_org.put_items(
            dynamodb, tables["task"], scale_org.task_items(more, {}, status="STOPPED")
        )
        row["passes"].append(dict(attempt(reconcile_pass, env, clusters, 100.0),
                                  stored_tasks=stored))  # fmt: skip
    return row


class Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def describe_machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
            "python": platform.python_version(), "load_average_before": os.getloadavg()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500,5000", help="services per run, comma-separated")
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stopped", type=int, default=20_000, help="stopped tasks added")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    sizes = [4, 8] if args.quick else [int(s) for s in args.sizes.split(",")]
    large = ({"ecs_clusters": 1, "stopped": 60, "rate": 50.0} if args.quick
             else {"ecs_clusters": 10, "stopped": args.stopped, "rate": 5.0})  # fmt: skip
    fastaws = None if args.quick or not find_fastaws() else emulator("fastaws", free_port(), 0)
    rows, machine, began = [], describe_machine(), time.monotonic()
    output = io.StringIO()  # the tables again, for the docs page
    with contextlib.redirect_stdout(Tee(sys.stdout, output)):
        try:
            with Emulator() as emu:
                sqs_url = emu.url
                if fastaws is not None:
                    sqs_url = f"http://127.0.0.1:{fastaws.args[2]}"
                    wait_url(f"{sqs_url}/moto-api/")
                for size in sizes:
                    org = Org(size, 2 if args.quick else 10)
                    large_run = large if size == max(sizes) else None
                    rows.append(run_size(emu, sqs_url, org, large_run))
                    print_row(rows[-1])
        finally:
            if fastaws is not None:
                fastaws.terminate()
        if len(rows) > 1:
            print_growth(rows[0], rows[-1])
        print_goals(rows)
        machine["load_average_after"] = os.getloadavg()
        machine["run_minutes"] = round((time.monotonic() - began) / 60, 1)
        print_machine(machine)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (args.out / "scale.md").write_text(output.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
