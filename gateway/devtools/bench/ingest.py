"""Ingest: one stream, queued by the broker for every consumer, drained by each in turn.

Every consumer (mosquitto_sub, the bare paho subscriber, the gateway, the peer) first
makes a persistent MQTT 5 session subscribed to the stream's topic and leaves. Then
`mosquitto_pub -q 1 -l` publishes the pre-generated stream once; the broker queues a copy
for each session. Each consumer in turn reconnects and takes its copy as fast as it can:
the same messages from the same broker, so the ratios compare like with like, and the
publisher's own speed does not cap anybody.

The gateway counts a reading when it is committed to SQLite (the device's `last_seq`, read
from the database every 20 ms); it acknowledges each message right after that commit, and
the bench checks the acknowledgement count at the end. `lost` = readings sent − readings
stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.devtools.bench.procs import (
    BenchError,
    Broker,
    Db,
    GatewayProc,
    Publisher,
    free_port,
    sub_drain,
    sub_session,
)
from gateway.devtools.bench.workload import device_id, write_station, write_stream


class Peer(Protocol):
    name: str

    def session(self, topic: str, count: int) -> None: ...

    def drain(self, count: int, timeout: float) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class IngestSizes:
    messages: int
    per_message: int
    devices: int
    rules: int


def paho(
    port: int, client_id: str, topic: str, *extra: str, timeout: float = 600
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.devtools.bench.paho_sub",
            "--port",
            str(port),
            "--client-id",
            client_id,
            "--topic",
            topic,
            "--timeout",
            str(timeout),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )
    if not out.stdout.strip():
        raise BenchError(f"paho subscriber failed: {out.stderr[-1000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def wait_gateway(db: Db, device: str, last: int, timeout: float) -> tuple[float, int, float]:
    """Poll until seq `last` is stored; return (first poll time, seq then, done time)."""
    first_t = 0.0
    first_seq = -1
    deadline = time.monotonic() + timeout
    stall_since = time.monotonic()
    previous = -2
    while time.monotonic() < deadline:
        seq = db.last_seq(device)
        now = time.perf_counter()
        if seq is not None:
            if first_seq < 0:
                first_t, first_seq = now, seq
            if seq >= last:
                return first_t, first_seq, now
            if seq != previous:
                previous = seq
                stall_since = time.monotonic()
            elif time.monotonic() - stall_since > 30:
                break  # nothing committed for 30 s: report what was stored
        time.sleep(0.02)
    return first_t, first_seq, time.perf_counter()


def measure(
    broker: Broker,
    folder: Path,
    sizes: IngestSizes,
    peer: Peer | None = None,
    *,
    references: bool = True,
) -> dict[str, float | int | str]:
    """Drain the stream with every consumer; `references=False`: the gateway only."""
    tag = f"in{sizes.per_message}r{sizes.rules}"
    station = write_station(folder / tag, tag, sizes.devices, sizes.rules, broker.port, free_port())
    device = device_id(0)
    topic = f"stations/{tag}/{device}/telemetry"
    stream = folder / tag / "stream.txt"
    readings = write_stream(stream, sizes.messages, sizes.per_message)
    n = sizes.messages
    timeout = 120 + n * sizes.per_message / 1000

    # sessions first, so the broker queues the whole stream for each consumer
    if references:
        sub_session(broker.port, f"bench-sub-{tag}", topic)
        paho(broker.port, f"bench-paho-{tag}", topic, "--session-only", timeout=20)
    gw = GatewayProc(station.config, station.db, station.http_port, station.folder / "gateway.log")
    gw.start()
    gw.stop()
    peer_error = ""
    if peer is not None:
        try:
            peer.session(topic, n)
        except (BenchError, OSError) as e:
            peer_error = str(e)
            peer = None
    sub_session(broker.port, f"bench-witness-{tag}", topic)
    witness = sub_drain(broker.port, f"bench-witness-{tag}", topic, n, timeout)

    publisher = Publisher(broker.port, topic)
    t0 = time.perf_counter()
    feeder = publisher.write_file(stream)
    if witness.wait(timeout + 30) != 0:
        publisher.close()
        raise BenchError(f"the witness did not see all {n} messages of the {tag} stream")
    publish_s = time.perf_counter() - t0
    feeder.join()
    time.sleep(0.3)  # the last PUBACKs reach mosquitto_pub before its input ends
    publisher.close()

    out: dict[str, float | int | str] = {
        "messages": n,
        "readings_sent": readings,
        "readings_per_message": sizes.per_message,
        "publisher_messages_per_s": round(n / publish_s),
    }
    if peer_error:
        out["peer_error"] = peer_error

    if references:
        t = time.perf_counter()
        proc = sub_drain(broker.port, f"bench-sub-{tag}", topic, n, timeout)
        if proc.wait(timeout + 30) != 0:
            raise BenchError("mosquitto_sub did not receive the whole stream")
        seconds = time.perf_counter() - t
        out["mosquitto_sub_per_s"] = round(readings / seconds)
        out["mosquitto_sub_messages_per_s"] = round(n / seconds)

        got = paho(broker.port, f"bench-paho-{tag}", topic, "--count", str(n), timeout=timeout)
        if not got.get("complete"):
            raise BenchError(f"the paho subscriber took {got.get('messages')} of {n} messages")
        out["paho_readings_per_s"] = round(got["readings"] / max(got["seconds"], 1e-9))

    if peer is not None:
        try:
            for key, value in peer.drain(n, timeout).items():
                out[f"{peer.name}_{key}"] = value
        except (BenchError, OSError) as e:
            out[f"{peer.name}_error"] = str(e)

    db = Db(station.db)
    gw.start()
    first_t, first_seq, done_t = wait_gateway(db, device, readings - 1, timeout)
    time.sleep(0.2)  # the acknowledgement follows the commit
    acks = gw.metric("stationgw_mqtt_acks_total")
    batches = gw.metric("stationgw_batches_total")
    gw.stop()
    stored = db.count()
    db.close()
    span = max(done_t - first_t, 1e-9)
    out["gateway_readings_per_s"] = (
        round((readings - 1 - first_seq) / span) if first_seq >= 0 else 0
    )
    out["gateway_acks"] = int(acks)
    out["gateway_batches"] = int(batches)
    out["rules"] = sizes.rules
    out["readings_stored"] = stored
    out["lost"] = readings - stored
    if references:
        out["ratio_gateway_paho"] = round(
            float(out["gateway_readings_per_s"]) / max(float(out["paho_readings_per_s"]), 1), 3
        )
    return out
