"""Run every measurement in one go against one Mosquitto, print the table, write JSON."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.devtools.bench import (
    cpu,
    ingest,
    latency,
    memory,
    restart,
    rules_cost,
    storage,
    township,
    uplink,
)
from gateway.devtools.bench.ingest import IngestSizes, Peer
from gateway.devtools.bench.procs import Broker
from gateway.devtools.bench.report import clean, machine, missing_keys, table, write_json


@dataclass(frozen=True, slots=True)
class Sizes:
    ingest_messages: int
    batched_messages: int
    devices: int
    rules: int
    cpu_warmup_s: float
    cpu_window_s: float
    probes: int
    mem_devices: int
    mem_interval_min: int
    overload_s: float
    storage_series: int
    storage_days: int
    rules_readings: int
    uplink_backlog: int = 3_600_000  # readings waiting in the outbox (1 h at 1,000/s)
    uplink_ingest: int = 1_000_000  # readings committed with the outbox on and off
    township_warmup_s: float = 30
    township_window_s: float = 600  # a township's real load, in real time
    storm_background_s: float = 30
    storm_s: float = 60  # every rain gauge over its lines within this
    restart_days: int = 365

    def scaled(self, f: float) -> Sizes:
        if f == 1:
            return self
        return replace(
            self,
            ingest_messages=max(200, int(self.ingest_messages * f)),
            batched_messages=max(50, int(self.batched_messages * f)),
            devices=max(8, int(self.devices * f)),
            cpu_window_s=max(1.0, self.cpu_window_s * f),
            probes=max(6, int(self.probes * f)),
            mem_devices=max(8, int(self.mem_devices * f)),
            overload_s=max(1.0, self.overload_s * f),
            storage_series=max(4, int(self.storage_series * f)),
            storage_days=max(7, int(self.storage_days * f)),
            rules_readings=max(2000, int(self.rules_readings * f)),
            uplink_backlog=max(20_000, int(self.uplink_backlog * f)),
            uplink_ingest=max(20_000, int(self.uplink_ingest * f)),
            township_warmup_s=max(3.0, self.township_warmup_s * f),
            township_window_s=max(8.0, self.township_window_s * f),
            storm_background_s=max(3.0, self.storm_background_s * f),
            storm_s=max(5.0, self.storm_s * f),
            restart_days=max(7, int(self.restart_days * f)),
        )


QUICK = Sizes(
    ingest_messages=20_000,
    batched_messages=3_000,
    devices=500,
    rules=2000,
    cpu_warmup_s=2,
    cpu_window_s=5,
    probes=30,
    mem_devices=1000,
    mem_interval_min=15,
    overload_s=5,
    storage_series=40,
    storage_days=7,
    rules_readings=10_000,
    uplink_backlog=300_000,
    uplink_ingest=200_000,
    township_warmup_s=5,
    township_window_s=30,
    storm_background_s=5,
    storm_s=10,
    restart_days=60,
)
FULL = Sizes(
    ingest_messages=200_000,
    batched_messages=50_000,
    devices=5000,
    rules=2000,
    cpu_warmup_s=3,
    cpu_window_s=20,
    probes=200,
    mem_devices=5000,
    mem_interval_min=5,
    overload_s=30,
    storage_series=400,
    storage_days=30,
    rules_readings=100_000,
)


def _say(msg: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def run_bench(
    *,
    quick: bool,
    json_path: Path | None,
    scale: float = 1.0,
    peer: bool = True,
    keep: Path | None = None,
) -> int:
    sizes = (QUICK if quick else FULL).scaled(scale)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="stationgw-bench-", dir=keep))
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "scale": scale}
    errors: list[str] = []
    notes: list[str] = []
    broker = Broker(folder / "mosquitto")
    started = time.perf_counter()

    def step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        _say(f"{name} …")
        t = time.perf_counter()
        try:
            got = fn()
        except Exception as e:  # one failed measurement must not hide the others
            errors.append(f"{name}: {e}")
            traceback.print_exc(file=sys.stderr)
            return {}
        got["seconds"] = round(time.perf_counter() - t, 1)
        _say(f"{name} done in {got['seconds']} s")
        return got

    try:
        broker.start()
        results["machine"] = machine(broker.version())
        the_peer: Peer | None = None
        if peer and not quick:
            from gateway.devtools.bench.peer import NodeRed

            nr = NodeRed(broker.port, folder / "node-red")
            reason = nr.prepare()
            if reason is None:
                the_peer = nr
            else:
                results["peer"] = {"available": False, "reason": reason}
        elif quick:
            results["peer"] = {"available": False, "reason": "not run with --quick"}
        if the_peer is not None:
            results["peer"] = {"available": True, "name": "Node-RED", "flow": the_peer_flow()}

        results["ingest"] = step(
            "ingest, 1 reading per message",
            lambda: ingest.measure(
                broker,
                folder,
                IngestSizes(sizes.ingest_messages, 1, sizes.devices, sizes.rules),
                the_peer,
            ),
        )
        results["ingest_batched"] = step(
            "ingest, 10 readings per message",
            lambda: ingest.measure(
                broker,
                folder,
                IngestSizes(sizes.batched_messages, 10, sizes.devices, sizes.rules),
            ),
        )
        results["ingest_batched_1_rule"] = step(
            "ingest, 10 readings per message, 1 rule (what the rules cost)",
            lambda: ingest.measure(
                broker,
                folder,
                IngestSizes(sizes.batched_messages, 10, sizes.devices, 1),
                references=False,
            ),
        )
        results["township"] = step(
            "township: 520 devices, 200 rules, the page open, in real time",
            lambda: township.measure(
                broker,
                folder,
                warmup_s=sizes.township_warmup_s,
                window_s=sizes.township_window_s,
            ),
        )
        results["quarter_core"] = step(
            "quarter of a core: the township under a storm",
            lambda: township.storm(
                broker,
                folder,
                background_s=sizes.storm_background_s,
                storm_s=sizes.storm_s,
            ),
        )
        if "limit" in results["quarter_core"]:
            notes.append(f"quarter_core limit: {results['quarter_core']['limit']}")
        results["restart"] = step(
            "restart with a year of data: clean stop, kill -9",
            lambda: restart.measure(broker, folder, days=sizes.restart_days),
        )
        max_rate = float(results["ingest"].get("gateway_readings_per_s") or 1000)
        results["cpu"] = step(
            "CPU at 1,000 readings/s",
            lambda: cpu.measure(
                broker,
                folder,
                devices=sizes.devices,
                rules=sizes.rules,
                rate=1000,
                warmup_s=sizes.cpu_warmup_s,
                window_s=sizes.cpu_window_s,
            ),
        )
        if "own_us_per_reading" in results["cpu"]:
            results["ingest"]["gateway_own_us_per_reading"] = results["cpu"]["own_us_per_reading"]
        lat: dict[str, Any] = {"endpoint": latency.ENDPOINT}
        for pct in (10, 50):
            lat[f"at_{pct}pct"] = step(
                f"latency at {pct}% of the max rate",
                lambda pct=pct: latency.measure(  # type: ignore[misc]
                    broker,
                    folder,
                    tag=f"lat{pct}",
                    devices=sizes.devices,
                    rules=sizes.rules,
                    rate=max_rate * pct / 100,
                    probes=sizes.probes,
                ),
            )
        lat["p50"] = lat["at_50pct"].get("p50")
        lat["p99"] = lat["at_50pct"].get("p99")
        results["latency_ms"] = lat
        results["memory"] = step(
            "memory: simulated hour, then 2× overload",
            lambda: memory.measure(
                broker,
                folder,
                devices=sizes.mem_devices,
                rules=sizes.rules,
                interval_min=sizes.mem_interval_min,
                overload_rate=2 * max_rate,
                overload_s=sizes.overload_s,
            ),
        )
        results["storage"] = step(
            "storage and chart query",
            lambda: storage.measure(
                broker.port, folder, series=sizes.storage_series, days=sizes.storage_days
            ),
        )
        results["rules"] = step("rules evaluator", lambda: rules_cost.measure(sizes.rules_readings))
        if results["rules"].get("us_per_reading_1"):
            results["rules"]["ratio_2000_to_1"] = round(
                results["rules"]["us_per_reading_2000"] / results["rules"]["us_per_reading_1"], 2
            )
        results["uplink"] = step(
            "uplinks: outbox cost on ingest, backlog drain (MQTT, InfluxDB)",
            lambda: uplink.measure(
                broker.port,
                folder / "uplink",
                backlog=sizes.uplink_backlog,
                ingest_readings=sizes.uplink_ingest,
            ),
        )
        if sizes.uplink_backlog < uplink.HOUR_AT_1000:
            notes.append(
                f"uplink drain measured on a {sizes.uplink_backlog:,}-reading backlog; "
                "drain_1h_s extrapolates it to 3.6 M readings"
            )
        peer_rate = results["ingest"].get("peer_readings_per_s")
        if peer_rate is not None:
            notes.append(
                "the Node-RED peer only parses JSON, compares one threshold and counts; it "
                "stores nothing and acknowledges on arrival, so it does less than the gateway; "
                "it takes the stream live, as mosquitto_pub publishes it"
            )
            if peer_rate >= 0.9 * results["ingest"].get("publisher_messages_per_s", 0):
                notes.append("the peer kept up with the publisher: its figure is a lower bound")
    finally:
        broker.stop()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    notes.append(f"latency end point: {latency.ENDPOINT}")
    results["notes"] = notes
    results["errors"] = errors
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results = clean(results)
    absent = missing_keys(results)
    if absent:
        errors.append(f"keys without a figure: {', '.join(absent)}")
    print(table(results))
    print(f"  (bench took {results['wall_s']} s; {results['mode']} run)")
    if json_path is not None:
        write_json(json_path, results)
    return 1 if errors else 0


def the_peer_flow() -> str:
    return "mqtt in (QoS 1, live) → json → switch (level_m > 8) → function counter"
