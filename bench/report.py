"""The issue's targets, checked against the figures of a run, and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTAKE_MIN_RATIO = 0.30  # of the bare endpoint's throughput
INTAKE_MAX_P99_MS = 50.0
FEED_MAX_P50_MS = 20.0
FEED_TARGET_CONCURRENCY = "1"  # "the latency of a page": one client waiting on it

TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """Each target with its figure and whether it is met. Any error answer fails it: a
    fast wrong answer is not a result."""
    targets: dict[str, Any] = {}
    intake = result.get("intake")
    if intake:
        service, bare = intake["service"], intake["bare"]
        clean = service["errors"] == 0
        ratio = service["rps"] / bare["rps"] if bare["rps"] else 0.0
        targets["intake_throughput_ratio"] = {
            "value": ratio,
            "target": f">= {INTAKE_MIN_RATIO:.0%}",
            "met": clean and ratio >= INTAKE_MIN_RATIO,
        }
        p99 = service["latency"]["p99_ms"]
        targets["intake_p99_ms"] = {
            "value": p99,
            "target": f"< {INTAKE_MAX_P99_MS:g} ms",
            "met": clean and p99 < INTAKE_MAX_P99_MS,
        }
    feed = result.get("feed")
    if feed and FEED_TARGET_CONCURRENCY in feed["levels"]:
        service = feed["levels"][FEED_TARGET_CONCURRENCY]["service"]
        p50 = service["latency"]["p50_ms"]
        targets["feed_p50_ms"] = {
            "value": p50,
            "target": f"< {FEED_MAX_P50_MS:g} ms at c={FEED_TARGET_CONCURRENCY}",
            "met": service["errors"] == 0 and p50 < FEED_MAX_P50_MS,
        }
    return targets


def _row(label: str, figures: dict[str, Any]) -> str:
    latency = figures["latency"]
    errors = figures["errors"]
    mark = "" if errors == 0 else f"  <- {_statuses(figures)}"
    cpu = figures.get("server_cpu_ms_per_request")
    return (
        f"  {label:<38}{figures['rps']:>9,.0f}{latency['p50_ms']:>9.2f}"
        f"{latency['p99_ms']:>9.2f}{errors:>8}{'' if cpu is None else f'{cpu:.2f}':>9}{mark}"
    )


def _statuses(figures: dict[str, Any]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(figures["statuses"].items()))


def _verdict(label: str, target: dict[str, Any], unit: str) -> str:
    value = target["value"]
    shown = f"{value:.1%}" if unit == "%" else f"{value:.2f} ms"
    state = "met" if target["met"] else "MISSED"
    return f"  {label:<38}{shown:>12}   target {target['target']:<20}{state}"


def format_backend(backend: str, result: dict[str, Any]) -> str:
    lines = [f"== {TITLES.get(backend, backend)} " + "=" * 60]
    lines.append(f"  {'':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'cpu ms':>9}")
    targets = result.get("targets", {})
    intake = result.get("intake")
    if intake:
        c = intake["concurrency"]
        lines.append(_row(f"intake  service  POST checkout  c={c}", intake["service"]))
        lines.append(_row(f"        bare     POST 1 INSERT  c={c}", intake["bare"]))
        lines.append(
            _verdict("        throughput service / bare", targets["intake_throughput_ratio"], "%")
        )
        lines.append(_verdict("        service p99", targets["intake_p99_ms"], "ms"))
    feed = result.get("feed")
    if feed:
        for level, figures in feed["levels"].items():
            lines.append(_row(f"feed    service  GET 100 events c={level}", figures["service"]))
            lines.append(_row(f"        bare     SELECT 100     c={level}", figures["bare_select"]))
            lines.append(_row(f"        bare     POST 1 INSERT  c={level}", figures["bare_insert"]))
        if "feed_p50_ms" in targets:
            lines.append(
                _verdict(
                    f"        service p50 ({feed['events']:,} events)", targets["feed_p50_ms"], "ms"
                )
            )
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
