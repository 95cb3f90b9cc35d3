"""Fifty simulated devices of every kind at once, over real Mosquitto, TCP and ptys:
every reading sent is stored exactly once (duplicates and resends included)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from firmware_stubs import cigem_device, handheld_device
from firmware_stubs import sl651_station as sl
from firmware_stubs.modbus_slave import SlaveBus
from tests.conftest import Mosquitto
from tests.integration.field import PtyPair, config, gateway, rows, series, until

pytestmark = pytest.mark.integration

HEAD = """
[station]
id = "mix"
name = "混合站"

[[villages]]
id = "v"
name = "村"

[[points]]
id = "p"
name = "点"
village = "v"
kind = "slope"

[sl651]
listen = {{ host = "127.0.0.1", port = 0 }}

[[serial_ports]]
id = "radio"
path = "{radio}"
protocol = "sl651"

[[serial_ports]]
id = "rs485"
path = "{rs485}"
protocol = "modbus_rtu"
baud = 19200

[broker]
port = {broker}
client_id = "gw-mix"

[database]
path = "station.db"

[http]
port = 0
"""

N_MQTT, N_CIGEM, N_TCP, N_RADIO, N_MODBUS, N_HANDHELD = 20, 10, 10, 4, 4, 2
REPORTS = 20


def devices() -> str:
    out = []

    def dev(i: str, body: str) -> None:
        out.append(f'[[devices]]\nid = "{i}"\nname = "{i}"\nkind = "k"\npoint = "p"\n{body}\n')

    for k in range(N_MQTT):
        dev(
            f"mj-{k:02d}",
            'metrics.rain_mm = { unit = "mm", min = 0, max = 50 }\n'
            'metrics.battery_v = { unit = "V", min = 0, max = 15 }',
        )
    for k in range(N_CIGEM):
        dev(
            f"geo-{k:02d}",
            f'transport = {{ kind = "cigem", dev_id = "5300{k:04d}", sensors = '
            '{ L1_LF_1 = "crack_mm", "L1_QJ_1.X" = "tilt_x" } }\n'
            'metrics.crack_mm = { unit = "mm", min = 0, max = 500 }\n'
            'metrics.tilt_x = { unit = "°", min = -90, max = 90 }',
        )
    for k in range(N_TCP):
        dev(
            f"hs-{k:02d}",
            f'transport = {{ kind = "sl651", address = "00100000{k:02d}", elements = '
            '{ PT = "pt", Z = "z", VT = "vt" } }\n'
            'metrics.pt = { unit = "mm", min = 0, max = 10000 }\n'
            'metrics.z = { unit = "m", min = 0, max = 100 }\n'
            'metrics.vt = { unit = "V", min = 0, max = 30 }',
        )
    for k in range(N_RADIO):
        dev(
            f"radio-{k:02d}",
            f'transport = {{ kind = "sl651", address = "00200000{k:02d}", '
            'elements = { PT = "pt", Z = "z" } }\n'
            'metrics.pt = { unit = "mm", min = 0, max = 10000 }\n'
            'metrics.z = { unit = "m", min = 0, max = 100 }',
        )
    for k in range(N_MODBUS):
        dev(
            f"mb-{k:02d}",
            f'transport = {{ kind = "modbus_rtu", port = "rs485", unit = {k + 1}, '
            'poll_s = 0.2, timeout_s = 0.5, registers = [{ metric = "level", address = 0 }] }\n'
            'metrics.level = { unit = "cm", min = 0, max = 65535 }',
        )
    for k in range(N_HANDHELD):
        dev(
            f"hh-{k:02d}",
            'transport = "handheld"\nmetrics.battery_v = { unit = "V", min = 0, max = 5 }',
        )
    return "\n".join(out)


def test_fifty_devices_every_reading_stored_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    radio = PtyPair(tmp_path / "radio-gw", tmp_path / "radio-dev")
    rs485 = PtyPair(tmp_path / "rs485-gw", tmp_path / "rs485-dev")
    toml = HEAD.format(radio=radio.a, rs485=rs485.a, broker=mosquitto.port) + devices()
    cfg = config(tmp_path, toml)
    assert len(cfg.devices) == 50
    db = cfg.database.path
    t0 = int(time.time() * 1000) - 86_400_000

    # what each simulated device sends
    mqtt_json = {
        f"mj-{k:02d}": [(t0 + i * 1000, round(0.1 * i, 1), 3.7) for i in range(REPORTS)]
        for k in range(N_MQTT)
    }
    cigem = {f"geo-{k:02d}": cigem_device.samples(REPORTS, t0 + k) for k in range(N_CIGEM)}
    tcp = {
        f"hs-{k:02d}": sl.script(
            f"00100000{k:02d}",
            REPORTS // 2,
            t0,
            seed=k,
            faults={3: "bad_crc", 6: "garbage"} if k % 3 == 0 else {},
        )
        for k in range(N_TCP)
    }
    radio_scripts = {
        f"radio-{k:02d}": sl.script(f"00200000{k:02d}", REPORTS // 2, t0, seed=100 + k)
        for k in range(N_RADIO)
    }
    hh = {
        f"hh-{k:02d}": [
            handheld_device.record(k * 100 + i, t0 + i * 60_000, checklist=None) for i in range(5)
        ]
        for k in range(N_HANDHELD)
    }

    def publish_all() -> None:
        payloads: list[tuple[str, bytes]] = []
        for dev, reports in mqtt_json.items():
            msgs = [
                json.dumps(
                    {"ts": ts, "seq": i + 1, "values": {"rain_mm": r, "battery_v": b}}
                ).encode()
                for i, (ts, r, b) in enumerate(reports)
            ]
            payloads += [(f"stations/mix/{dev}/telemetry", m) for m in msgs + msgs[:5]]  # resends
        for dev, s in cigem.items():
            dev_id = f"5300{int(dev[4:]):04d}"
            payloads += [("$dp", p) for p in cigem_device.faulty("repeat", dev_id, s[:10])]
            payloads += [("$dp", cigem_device.payload(dev_id, s[10:]))]
        for dev, records in hh.items():
            payloads += [
                (f"stations/mix/{dev}/patrol", handheld_device.mqtt_payload(records[:3])),
                (f"stations/mix/{dev}/patrol", handheld_device.mqtt_payload(records)),
            ]
        by_topic: dict[str, list[bytes]] = {}
        for topic, p in payloads:
            by_topic.setdefault(topic, []).append(p)
        for topic, ps in by_topic.items():
            cigem_device.publish(
                "127.0.0.1", mosquitto.port, f"pub-{hash(topic) & 0xFFFF}", ps, topic
            )

    def radio_frames() -> bytes:
        out = b""
        for i in range(REPORTS // 2):  # the stations take turns on the radio channel
            for s in radio_scripts.values():
                out += sl.frame_of(s, i)
            out += b"\x00\xffnoise\x7e"
        return out

    async def main() -> tuple[dict[str, int], float]:
        bus = SlaveBus(str(rs485.b), {k + 1: [1000 + k] for k in range(N_MODBUS)})
        started = time.monotonic()
        try:
            radio.start()
            rs485.start()
            await bus.start()
            async with gateway(cfg) as running:
                field = running.field
                assert (
                    field is not None
                    and field.drivers.get("cigem")
                    and field.drivers.get("handheld")
                    and field.drivers.get("sl651")
                )
                await until(
                    lambda: (
                        field.drivers.get("cigem").source.connected
                        and field.drivers.get("handheld").source.connected
                    ),
                    "subscribed",
                )
                (port,) = field.ports()
                await until(
                    lambda: (
                        "radio" in field.drivers.get("sl651").lines
                        and field.drivers.get("sl651").lines["radio"].is_open
                    ),
                    "radio",
                )
                fd = radio.open_b()
                os.write(fd, radio_frames())
                confirmed = await asyncio.gather(
                    asyncio.to_thread(publish_all),
                    *(sl.run_tcp(s, "127.0.0.1", port) for s in tcp.values()),
                )
                for got in confirmed[1:]:
                    assert got == list(range(REPORTS // 2))
                expected = (
                    N_MQTT * REPORTS * 2
                    + N_CIGEM * REPORTS * 2
                    + N_TCP * REPORTS // 2 * 3
                    + N_RADIO * REPORTS // 2 * 2
                )
                modbus_series = "SELECT COUNT(*) FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device LIKE 'mb-%'"
                await until(
                    lambda: (
                        rows(db, "SELECT COUNT(*) FROM readings")[0][0]
                        - rows(db, modbus_series)[0][0]
                        == expected
                    ),
                    f"{expected} readings",
                    60,
                )
                await until(lambda: len(rows(db, "SELECT 1 FROM patrol_records")) == 10, "records")
                await until(
                    lambda: all(
                        s.polls >= 10 for s in field.drivers["modbus_rtu"].buses["rs485"].slaves
                    ),
                    "polls",
                )
                os.close(fd)
                elapsed = time.monotonic() - started
                polls = {
                    s.device.id: s.polls for s in field.drivers["modbus_rtu"].buses["rs485"].slaves
                }
            return polls, elapsed
        finally:
            await bus.stop()
            radio.kill()
            rs485.kill()

    polls, elapsed = asyncio.run(main())
    for dev, reports in mqtt_json.items():
        assert series(db, dev, "rain_mm") == [(ts, r) for ts, r, _ in reports]
        assert series(db, dev, "battery_v") == [(ts, b) for ts, _, b in reports]
    for dev, s in cigem.items():
        assert series(db, dev, "crack_mm") == [(x.ts, x.crack_mm) for x in s]
    for dev, s in {**tcp, **radio_scripts}.items():
        assert series(db, dev, "pt") == [(r.obs_ms, r.pt) for r in s.reports]
        assert series(db, dev, "z") == [(r.obs_ms, r.z) for r in s.reports]
    for dev, n in polls.items():
        stored = series(db, dev, "level")
        assert len(stored) == n and {v for _, v in stored} == {1000 + int(dev[3:])}
    print(
        f"\n50 devices: {rows(db, 'SELECT COUNT(*) FROM readings')[0][0]} readings stored "
        f"in {elapsed:.1f} s"
    )
