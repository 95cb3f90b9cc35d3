"""The bench's results: nested JSON (`ingest.lost` is `{"ingest": {"lost": …}}`) and a table."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# Every key the issue asks for, as dotted paths into the nested JSON.
REQUIRED_KEYS: tuple[str, ...] = (
    "ingest.gateway_readings_per_s",
    "ingest.paho_readings_per_s",
    "ingest.mosquitto_sub_per_s",
    "ingest.ratio_gateway_paho",
    "ingest.lost",
    "ingest_batched.gateway_readings_per_s",
    "cpu.percent_of_core_at_1000_rps",
    "cpu.broker_percent_of_core_at_1000_rps",
    "latency_ms.p50",
    "latency_ms.p99",
    "memory.rss_mb_steady",
    "memory.rss_mb_overload",
    "storage.bytes_per_point",
    "storage.row_table_bytes_per_point",
    "storage.chart_query_ms",
    "rules.us_per_reading_1",
    "rules.us_per_reading_300",
    "rules.us_per_reading_2000",
    "uplink.outbox_ingest_ratio",
    "uplink.mqtt_drain_readings_per_s",
    "uplink.influx_drain_readings_per_s",
    "township.cpu_percent",
    "township.wakeups_per_s",
    "township.rss_mb",
    "township.disk_write_bytes_per_reading",
    "township.disk_write_mb_per_day",
    "quarter_core.alert_latency_ms_p99",
    "quarter_core.lost",
    "restart.ready_s",
    "restart.ready_s_kill9",
    "restart.rule_state_ms",
    "ingest.gateway_own_us_per_reading",
    "cpu.ratio_gateway_mosquitto",
    "rules.ratio_2000_to_1",
    "ingest_batched.ratio_gateway_paho",
)

# (dotted key, label, unit, goal from the issue)
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("ingest.publisher_messages_per_s", "mosquitto_pub -q 1 publishes the stream", "msg/s", ""),
    ("ingest.mosquitto_sub_per_s", "mosquitto_sub receives (1 reading/msg)", "msg/s", ""),
    ("ingest.paho_readings_per_s", "bare paho subscriber, parses JSON", "readings/s", ""),
    ("ingest.gateway_readings_per_s", "gateway: stored + acknowledged", "readings/s", ""),
    ("ingest.ratio_gateway_paho", "gateway / bare paho", "×", "≥ 0.5"),
    ("ingest.lost", "lost (sent − stored)", "readings", "0"),
    (
        "ingest.gateway_own_us_per_reading",
        "gateway's own CPU per reading (− bare paho's)",
        "µs",
        "",
    ),
    ("ingest.peer_readings_per_s", "peer: Node-RED flow, live, does less", "readings/s", ""),
    ("ingest_batched.mosquitto_sub_per_s", "mosquitto_sub (10 readings/msg)", "readings/s", ""),
    ("ingest_batched.paho_readings_per_s", "bare paho (10 readings/msg)", "readings/s", ""),
    (
        "ingest_batched.gateway_readings_per_s",
        "gateway (10 readings/msg)",
        "readings/s",
        "≥ 100000",
    ),
    ("ingest_batched.ratio_gateway_paho", "gateway / bare paho (10 readings/msg)", "×", "≥ 0.9"),
    ("ingest_batched.lost", "lost (10 readings/msg)", "readings", "0"),
    (
        "ingest_batched_1_rule.gateway_readings_per_s",
        "gateway (10 readings/msg), 1 rule, not 2,000",
        "readings/s",
        "",
    ),
    ("cpu.percent_of_core_at_1000_rps", "gateway CPU at 1,000 readings/s", "% of a core", "≤ 2"),
    ("cpu.broker_percent_of_core_at_1000_rps", "Mosquitto CPU at the same rate", "% of a core", ""),
    ("cpu.paho_percent_of_core_at_1000_rps", "bare paho CPU at the same rate", "% of a core", ""),
    ("cpu.ratio_gateway_mosquitto", "gateway CPU / Mosquitto's", "×", "≤ 3"),
    ("township.readings_per_s", "township: readings stored", "readings/s", ""),
    ("township.cpu_percent", "township: gateway CPU", "% of a core", "≤ 1"),
    ("township.wakeups_per_s", "township: wake-ups (all threads)", "/s", ""),
    ("township.rss_mb", "township: RSS", "MB", ""),
    (
        "township.disk_write_bytes_per_reading",
        "township: bytes written per reading",
        "B",
        "≤ 1000",
    ),
    ("township.disk_write_mb_per_day", "township: written per day", "MB/day", ""),
    ("township.lost", "township: lost", "readings", "0"),
    (
        "quarter_core.alert_latency_ms_p50",
        "¼ core, storm: publish → alert p50",
        "ms",
        "",
    ),
    ("quarter_core.alert_latency_ms_p99", "                              p99", "ms", "≤ 1000"),
    ("quarter_core.alerts_missed", "¼ core, storm: alerts missing", "alerts", "0"),
    ("quarter_core.lost", "¼ core, storm: readings lost", "readings", "0"),
    ("quarter_core.throttled_s", "¼ core: time held by the limit", "s", ""),
    ("restart.ready_s", "restart after a clean stop: ready", "s", "≤ 5"),
    ("restart.ready_s_kill9", "restart after kill -9: ready", "s", "≤ 5"),
    ("restart.rule_state_ms", "rules' state restored from the database", "ms", ""),
    ("restart.db_mb", "database of a year, 200 series", "MB", ""),
    ("latency_ms.at_10pct.ticket_p50", "publish → ticket stored, 10% of max: p50", "ms", ""),
    ("latency_ms.at_10pct.ticket_p99", "                                     p99", "ms", ""),
    ("latency_ms.at_10pct.p50", "  … and alert published on MQTT:     p50", "ms", ""),
    ("latency_ms.at_10pct.p99", "                                     p99", "ms", ""),
    ("latency_ms.at_50pct.ticket_p50", "publish → ticket stored, 50% of max: p50", "ms", ""),
    ("latency_ms.at_50pct.ticket_p99", "                                     p99", "ms", ""),
    ("latency_ms.p50", "  … and alert published on MQTT:     p50", "ms", ""),
    ("latency_ms.p99", "                                     p99", "ms", "≤ 50"),
    ("latency_ms.at_50pct.missed", "probes with no alert within 5 s (50%)", "probes", "0"),
    ("memory.rss_mb_idle", "gateway RSS, started, idle", "MB", ""),
    ("memory.rss_mb_steady", "RSS after the simulated hour", "MB", "≤ 150"),
    ("memory.rss_mb_overload", "RSS peak under 2× overload", "MB", "≤ 1.5 × steady"),
    ("memory.overload_lost", "lost after the overload drained", "readings", "0"),
    ("storage.bytes_per_point", "bytes per point, compacted chunks", "B", "≤ 3"),
    ("storage.row_table_bytes_per_point", "bytes per point, row table", "B", ""),
    ("storage.compaction_points_per_s", "compaction", "points/s", ""),
    ("storage.insert_points_per_s", "insert + rollups (ingest's store step)", "points/s", ""),
    ("storage.insert_points_per_s_no_rollups", "the same without rollups", "points/s", ""),
    ("storage.chart_query_ms", "chart: 7 days × 50 series, /api/readings/multi", "ms", "≤ 100"),
    ("storage.chart_raw_query_ms", "every raw reading of those 50 series", "ms", ""),
    ("rules.us_per_reading_1", "evaluator, 1 rule", "µs/reading", ""),
    ("rules.us_per_reading_300", "evaluator, 300 rules", "µs/reading", ""),
    ("rules.us_per_reading_2000", "evaluator, 2,000 rules", "µs/reading", "≤ 10"),
    ("rules.ratio_2000_to_1", "evaluator, 2,000 rules / 1 rule", "×", "≤ 5"),
    ("rules.kb_per_rule_2000", "evaluator state, 2,000 rules", "KB/rule", "≤ 50"),
    (
        "uplink.ingest_readings_per_s_outbox_off",
        "ingest commit, no uplink (no rules)",
        "readings/s",
        "",
    ),
    ("uplink.ingest_readings_per_s_outbox_on", "ingest commit, outbox filled", "readings/s", ""),
    ("uplink.outbox_ingest_ratio", "ingest with outbox / without", "×", ""),
    ("uplink.mqtt_drain_readings_per_s", "MQTT uplink drains a backlog", "readings/s", ""),
    ("uplink.mqtt_drain_1h_s", "MQTT: 1 h at 1,000 readings/s drains in", "s", "< 60"),
    ("uplink.influx_drain_readings_per_s", "InfluxDB v1 uplink drains a backlog", "readings/s", ""),
    ("uplink.influx_drain_1h_s", "InfluxDB: 1 h at 1,000 readings/s drains in", "s", "< 60"),
    ("uplink.influx_lost", "points missing in InfluxDB after the drain", "points", "0"),
)


def get(results: dict[str, Any], dotted: str) -> Any:
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def missing_keys(results: dict[str, Any]) -> list[str]:
    return [k for k in REQUIRED_KEYS if get(results, k) is None]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(results: dict[str, Any]) -> str:
    lines = [f"  {'measurement':<46} {'value':>12}  {'unit':<12} goal"]
    section = ""
    for key, label, unit, goal in ROWS:
        value = get(results, key)
        if value is None:
            continue
        head = key.split(".")[0]
        if head != section:
            section = head
            lines.append(f"  [{head}]")
        lines.append(f"  {label:<46} {_fmt(value):>12}  {unit:<12} {goal}")
    for note in results.get("notes", []):
        lines.append(f"  note: {note}")
    for err in results.get("errors", []):
        lines.append(f"  ERROR: {err}")
    return "\n".join(lines)


def _proc_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _cpu_model() -> str:
    for line in _proc_lines("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _ram_gib() -> float:
    for line in _proc_lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return float("nan")


def machine(mosquitto_version: str) -> dict[str, Any]:
    node_bin = shutil.which("node")
    node = (
        subprocess.run([node_bin, "--version"], capture_output=True, text=True, check=False)
        if node_bin
        else None
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mosquitto": mosquitto_version,
        "paho_mqtt": metadata.version("paho-mqtt"),
        "sqlite": sqlite3.sqlite_version,
        "node": node.stdout.strip() if node is not None and node.returncode == 0 else None,
    }


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False, default=str)
    path.write_text(text + "\n")


def clean(value: Any) -> Any:
    """NaN → None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
