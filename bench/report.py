"""The issue's targets, checked against the figures of a run, and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTAKE_MIN_RATIO = 0.30  # of the bare endpoint's throughput
INTAKE_MAX_P99_MS = 50.0
FEED_MAX_P50_MS = 20.0
FEED_TARGET_CONCURRENCY = "1"  # "the latency of a page": one client waiting on it
WEBHOOK_MIN_RATE = 3_000.0  # deliveries/s from one worker process
WEBHOOK_MIN_RATIO = 0.50  # of the bare sender loop
PIPELINE_MIN_RATE = 300.0  # orders/s from intake to READY
PIPELINE_TARGET_BACKEND = "postgresql"

TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def check_targets(result: dict[str, Any], backend: str) -> dict[str, Any]:
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
    for case, figures in result.get("ui_list", {}).items():
        targets[f"ui_list {case} p50_ms"] = {
            "value": figures["p50_ms"],
            "target": "< 150 ms",
            "met": figures["met"],
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
    webhooks = result.get("webhooks")
    if webhooks:
        sent = webhooks["dispatcher"]
        clean = sent["errors"] == 0
        targets["webhook_rate"] = {
            "value": sent["rate"],
            "target": f">= {WEBHOOK_MIN_RATE:,.0f}/s",
            "met": clean and sent["rate"] >= WEBHOOK_MIN_RATE,
        }
        bare = webhooks["bare"]["rps"]
        ratio = sent["rate"] / bare if bare else 0.0
        targets["webhook_ratio"] = {
            "value": ratio,
            "target": f">= {WEBHOOK_MIN_RATIO:.0%}",
            "met": clean and ratio >= WEBHOOK_MIN_RATIO,
        }
    pipeline = result.get("pipeline")
    if pipeline and backend == PIPELINE_TARGET_BACKEND:
        all_ready = pipeline["statuses"].get("READY", 0) == pipeline["orders"]
        targets["pipeline_rate"] = {
            "value": pipeline["rate"],
            "target": f">= {PIPELINE_MIN_RATE:,.0f}/s",
            "met": all_ready
            and pipeline["intake"]["errors"] == 0
            and pipeline["rate"] >= PIPELINE_MIN_RATE,
        }
    # Imported here: bench.push imports the service, which this module need not.
    from bench.push import check_target

    push = check_target(result)
    if push is not None:
        targets["push_ratio"] = push
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
    if unit == "%":
        shown = f"{value:.1%}"
    elif unit == "/s":
        shown = f"{value:,.0f}/s"
    else:
        shown = f"{value:.2f} ms"
    state = "met" if target["met"] else "MISSED"
    return f"  {label:<38}{shown:>12}   target {target['target']:<20}{state}"


def _rate(label: str, rate: float, unit: str, note: str = "") -> str:
    return f"  {label:<38}{rate:>9,.0f} {unit:<13}{note}"


def _format_webhooks(webhooks: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    sent, c = webhooks["dispatcher"], webhooks["concurrency"]
    cpu = sent.get("worker_cpu_ms_per_delivery")
    note = f"{sent['errors']} errors" + ("" if cpu is None else f", worker {cpu:.3f} ms cpu each")
    runs = ", ".join(f"{r['rps']:,.0f}" for r in webhooks["bare"]["runs"])
    bare_cpu = min(r["cpu_ms_per_request"] for r in webhooks["bare"]["runs"])
    lines = [
        _rate(f"webhooks dispatcher, 1 worker  c={c}", sent["rate"], "deliveries/s", note),
        _rate(
            f"         bare sender loop      c={c}",
            webhooks["bare"]["rps"],
            "POSTs/s",
            f"mean of {runs}; {bare_cpu:.3f} ms cpu each; {webhooks['body_bytes']} B bodies",
        ),
        _verdict("         dispatcher rate", targets["webhook_rate"], "/s"),
        _verdict("         dispatcher / bare", targets["webhook_ratio"], "%"),
    ]
    fairness = webhooks.get("fairness")
    if fairness:
        share = fairness["rate"] / sent["rate"] if sent["rate"] else 0.0
        slow = fairness["slow_endpoint"].get("succeeded", 0)
        lines.append(
            _rate(
                "         fast beside a slow endpoint",
                fairness["rate"],
                "deliveries/s",
                f"{share:.0%} of alone; the slow one delivered {slow:,} meanwhile",
            )
        )
    return lines


def _format_pipeline(pipeline: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(pipeline["statuses"].items()))
    intake = pipeline["intake"]
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in pipeline["cpu_ms_per_order"].items())
    raw = pipeline["raw"]
    runs = ", ".join(f"{r['tps']:,.0f}" for r in raw["runs"])
    lines = [
        _rate(
            f"pipeline intake to READY, {pipeline['workers']} worker(s)",
            pipeline["rate"],
            "orders/s",
            f"{pipeline['orders']:,} orders: {statuses}",
        ),
        _rate(
            f"         intake alone          c={pipeline['concurrency']}",
            intake["rps"],
            "orders/s",
            f"p99 {intake['latency']['p99_ms']:.1f} ms, {intake['errors']} errors; "
            f"cpu ms/order: {cpu}",
        ),
        _rate(
            "         raw INSERT 1 KB + UPDATE",
            raw["tps"],
            "tx/s",
            f"mean of {runs}; {raw['runs'][0]['tool']}",
        ),
    ]
    if "pipeline_rate" in targets:
        lines.append(_verdict("         intake to READY", targets["pipeline_rate"], "/s"))
    return lines


def format_backend(backend: str, result: dict[str, Any]) -> str:
    lines = [f"== {TITLES.get(backend, backend)} " + "=" * 60]
    targets = result.get("targets", {})
    if result.get("webhooks"):
        lines += _format_webhooks(result["webhooks"], targets)
    if result.get("pipeline"):
        lines += _format_pipeline(result["pipeline"], targets)
    if result.get("push"):
        from bench.push import format_lines

        lines += format_lines(result["push"], targets.get("push_ratio"))
    if result.get("ui_list"):
        from bench.ui_list import format_results

        lines += format_results(backend, result["ui_list"]).splitlines()
    if result.get("intake") or result.get("feed"):
        lines.append(f"  {'':<38}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'cpu ms':>9}")
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
