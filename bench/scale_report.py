"""The tables bench/scale.py prints (Markdown, ready for docs/operating/scale.md)."""

from __future__ import annotations

from typing import Any


def calls(counts: dict[str, int]) -> str:
    return f"{sum(counts.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + ")"


def print_row(row: dict[str, Any]) -> None:
    r, g = row["replica"], row["gauges_read"]
    print(f"\n### {row['services']:,} services ({row['stored_tasks']:,} stored tasks)")
    print("\n| figure | value |\n|---|---|")
    lines = [
        ("events through the replica", f"{r['events']:,} ({r['events_per_second']:.0f}/s)"),
        ("/metrics size", f"{r['metrics_bytes'] / 1e6:.2f} MB, {r['series']:,} series"
                          f" ({r['metrics_gzip_bytes'] / 1e6:.2f} MB gzipped, as Prometheus asks)"),
        ("/metrics scrape (median / max of 5; gzipped median)",
         f"{r['scrape_seconds_median']:.3f} s / {r['scrape_seconds_max']:.3f} s; "
         f"{r['scrape_seconds_gzip_median']:.3f} s"),
        ("replica RSS after the events (peak)", f"{r['rss_mib']:.0f} MiB ({r['peak_rss_mib']:.0f})"),
        ("service table: one rescan", f"{g['items']:,} items, {g['bytes'] / 1e6:.2f} MB, "
                                      f"{g['rcu_per_rescan']:.0f} RCU"),
        ("the replica's reads while the events went through",
         ", ".join(f"{k} {v:,}" for k, v in sorted(r.get("dynamodb_reads", {}).items()))
         + f" in {r['events'] / r['events_per_second']:.0f} s"),
        ("gauges' reads per replica: before / now",
         f"{g['rcu_per_second_before']:.2f} / {g['rcu_per_second_now']:.2f} RCU/s"),
    ]  # fmt: skip
    for what in ("report", "task_by_arn", "task_by_id"):
        c = row[what]
        if "error" in c:
            lines.append((f"ecswatch {what}", f"failed: {c['error'][-200:]}"))
            continue
        lines.append((f"ecswatch {what.replace('_by_', ' by ')} ({row['stored_tasks']:,} stored)",
                      f"{c['seconds']:.1f} s ({c['cpu_seconds']:.1f} s its own CPU), "
                      f"peak {c['peak_rss_mib']:.0f} MiB"))  # fmt: skip
    for p in row.get("passes", []):
        if "error" in p:
            lines.append(("reconcile pass", f"failed: {p['error'][-200:]}"))
            continue
        lines.append((
            f"reconcile pass ({p['stored_tasks']:,} stored)",
            f"{p['tasks_listed']:,} ECS tasks, {p['fixes']:.0f} fixes; ECS calls "
            f"{calls(p['ecs_calls'])}; DynamoDB calls {calls(p['dynamodb_calls'])}; "
            f"{p['seconds']:.0f} s at {p['rate']:g} calls/s ({p['call_seconds']:.0f} s in calls), "
            f"peak {p['peak_rss_mib']:.0f} MiB",
        ))  # fmt: skip
    for name, value in lines:
        print(f"| {name} | {value} |")


def print_growth(small: dict[str, Any], large: dict[str, Any]) -> None:
    """Series and bytes each added service (or cluster, 100 services apiece) costs, per metric,
    from two sizes; every service here saw each kind of event once: a worst case."""
    before, after = small["replica"]["families"], large["replica"]["families"]
    for per, added in (
        ("service", large["services"] - small["services"]),
        ("cluster", -(-large["services"] // 100) + (small["services"] // -100)),
    ):
        if not added:
            continue
        print(f"\n### What each {per} adds to /metrics ({small['services']:,} -> "
              f"{large['services']:,} services)")  # fmt: skip
        print(f"\n| metric | series per {per} | bytes per {per} |\n|---|---|---|")
        total = [0.0, 0.0]
        for name, now in after.items():
            was = before.get(name, {"series": 0, "bytes": 0})
            if now["per"] != per:
                continue
            series = (now["series"] - was["series"]) / added
            size = (now["bytes"] - was["bytes"]) / added
            total = [total[0] + series, total[1] + size]
            print(f"| `{name}` | {series:.1f} | {size:,.0f} |")
        print(f"| all | {total[0]:.1f} | {total[1]:,.0f} |")


def print_goals(rows: list[dict[str, Any]]) -> None:
    """Issue 23's goals, judged on the largest size (report: against the smallest)."""
    row = rows[-1]
    r, g, passes = row["replica"], row["gauges_read"], row.get("passes", [])
    reports = [(x["stored_tasks"], x["report"].get("peak_rss_mib", 0.0)) for x in (rows[0], row)]
    peaks = [p["peak_rss_mib"] for p in passes if "peak_rss_mib" in p]
    goals = [
        ("/metrics <= 5 MB", r["metrics_bytes"] <= 5e6,
         f"{r['metrics_bytes'] / 1e6:.1f} MB ({r['metrics_gzip_bytes'] / 1e6:.1f} MB gzipped)"),
        ("/metrics rendered in <= 0.5 s", r["scrape_seconds_median"] <= 0.5,
         f"{r['scrape_seconds_median']:.2f} s"),
        ("replica RSS <= 200 MB", r["rss_mib"] * 1.048576 <= 200, f"{r['rss_mib']:.0f} MiB"),
        ("gauges' reads <= 5 RCU/s per replica", g["rcu_per_second_now"] <= 5,
         f"{g['rcu_per_second_now']:.2f} RCU/s (was {g['rcu_per_second_before']:.1f})"),
        ("a pass's memory does not grow with stopped tasks",
         len(peaks) == 2 and peaks[1] <= peaks[0] * 1.1, " -> ".join(f"{p:.0f} MiB" for p in peaks)),
        ("report streams: its memory does not grow with the table",
         reports[1][1] <= reports[0][1] * 1.1,
         " -> ".join(f"{peak:.0f} MiB at {stored:,} tasks" for stored, peak in reports)),
    ]  # fmt: skip
    print(
        f"\n### Goals at {row['services']:,} services\n\n| goal | met | measured |\n|---|---|---|"
    )
    for goal, met, figure in goals:
        print(f"| {goal} | {'yes' if met else 'no'} | {figure} |")


def print_machine(machine: dict[str, Any]) -> None:
    before, after = machine["load_average_before"][0], machine["load_average_after"][0]
    print(f"\nMachine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Python {machine['python']}; load average {before:.1f} before the run and "
          f"{after:.1f} after it; the run took {machine['run_minutes']} min.")  # fmt: skip
