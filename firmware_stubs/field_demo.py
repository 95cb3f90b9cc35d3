"""The demo's field links: a rain gauge behind a 4G DTU (Modbus RTU), a pump-station PLC
on Modbus TCP, a gas analyser speaking HJ 212 and two SL 651 hydrology stations (HEX/BCD
and ASCII mode) over TCP, each with slowly changing values.

`run_field_stubs` runs them until `stop` is set: the DTU registers with its IMEI, sends
heartbeats and drops its link every ~40 s (then reconnects, as on a weak 4G link); the
PLC serves its registers; the analyser uploads real-time data every `interval_s` and
waits for each answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import shutil
import time
from pathlib import Path

from firmware_stubs import alarm_panel, cigem_device, handheld_device
from firmware_stubs.dtu import DtuStub, RtuSlave
from firmware_stubs.hj212_analyser import Analyser, Upload
from firmware_stubs.modbus_slave import SlaveBus
from firmware_stubs.modbus_tcp_slave import TcpSlave
from firmware_stubs.sl651_demo import DemoStation

log = logging.getLogger("firmware_stubs.field_demo")
DTU_REGISTRATION = b"860000000000001"  # the demo DTU's IMEI, as in demo_station.toml
HJ212_MN = "QS0000000000000001"


async def _vary(gauge: RtuSlave, plc: TcpSlave, stop: asyncio.Event, seed: int) -> None:
    rnd = random.Random(seed)
    k = 0
    while not stop.is_set():
        regs = gauge.holding[1]
        regs[0] = (regs[0] + rnd.randint(0, 5)) % 65536  # 0.1 mm counts of the gauge
        plc.set(1, 0, round(180 + 40 * math.sin(k / 10)))  # sump level, cm
        k += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)


RtuBus = tuple[asyncio.subprocess.Process, SlaveBus, asyncio.subprocess.Process] | None


async def start_rtu_bus(data: Path) -> RtuBus:
    """A Modbus RTU slave (unit 5, a water level in cm) behind a socat pseudo-terminal pair:
    the gateway opens data/rtu-gw, the slave data/rtu-dev. None (logged) without socat."""
    socat = shutil.which("socat")
    if socat is None:
        log.warning("socat is not installed: the demo's Modbus RTU bus is left out")
        return None
    gw, dev = data / "rtu-gw", data / "rtu-dev"
    proc = await asyncio.create_subprocess_exec(
        socat,
        f"pty,raw,echo=0,link={gw}",
        f"pty,raw,echo=0,link={dev}",
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(100):
        if gw.exists() and dev.exists():
            break
        await asyncio.sleep(0.05)
    bus = SlaveBus(str(dev), {5: [1236, 0]})
    await bus.start()
    dock = await asyncio.create_subprocess_exec(  # the handheld dock's line
        socat,
        f"pty,raw,echo=0,link={data / 'dock-gw'}",
        f"pty,raw,echo=0,link={data / 'dock-dev'}",
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(100):
        if (data / "dock-dev").exists():
            break
        await asyncio.sleep(0.05)
    return proc, bus, dock


async def stop_rtu_bus(rtu: RtuBus) -> None:
    if rtu is None:
        return
    proc, bus, dock = rtu
    await bus.stop()
    for p in (proc, dock):
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(p.wait(), 5)


PANEL_ADDRESS = "0A0000000001"
CIGEM_DEV_ID = "53000012"
CIGEM_TOPIC = "cigem/dp"  # as in demo_station.toml (amqtt refuses $dp)


async def _panel(port: int, stop: asyncio.Event, every: float) -> None:
    serial = 0
    while not stop.is_set():
        serial += 1
        frame = alarm_panel.system_state(PANEL_ADDRESS, serial, int(time.time()) * 1000)
        with contextlib.suppress(OSError, TimeoutError):
            await alarm_panel.run_tcp(
                alarm_panel.PanelScript([frame]), "127.0.0.1", port, reply_wait_s=5
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _dock(path: Path, stop: asyncio.Event) -> None:
    records = [
        handheld_device.record(
            k, int(time.time() * 1000) - 60_000 * (3 - k), by="李明", checklist=None
        )
        for k in (1, 2)
    ]
    await asyncio.sleep(3)  # the gateway opens its end of the line first
    with contextlib.suppress(Exception):
        answer = await asyncio.to_thread(
            handheld_device.dock_send, str(path), handheld_device.dock_lines(records), 10.0
        )
        print(
            f"  handheld dock: 李明的巡查记录仪 uploaded 2 patrol records, gateway answered "
            f"{answer.strip()!r}",
            flush=True,
        )


async def _cigem(port: int, stop: asyncio.Event, every: float) -> None:
    k = 0
    while not stop.is_set():
        now = int(time.time()) * 1000
        sample = cigem_device.Sample(now, round(0.2 + 0.01 * k, 4), 0.0)
        body = cigem_device.payload(CIGEM_DEV_ID, [sample])
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                cigem_device.publish, "127.0.0.1", port, "cigem-demo", [body], CIGEM_TOPIC
            )
        k += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def uploads(start_ms: int, interval_s: float, count: int, seed: int) -> list[Upload]:
    rnd = random.Random(seed)
    out = []
    for k in range(count):
        so2 = round(18 + 6 * math.sin(k / 8) + rnd.uniform(-1, 1), 2)
        co = round(0.6 + rnd.uniform(-0.1, 0.1), 3)
        out.append(Upload(start_ms + round(k * interval_s * 1000), {"a21026": so2, "a21005": co}))
    return out


async def run_field_stubs(
    *,
    dtu_port: int,
    plc: TcpSlave,
    hj212_port: int,
    stop: asyncio.Event,
    sl651_port: int | None = None,
    panel_port: int | None = None,
    dock_path: Path | None = None,
    broker_port: int | None = None,
    interval_s: float = 5.0,
    seed: int = 0,
) -> None:
    gauge = RtuSlave({1: [1234, 0]})
    dtu = DtuStub(
        "127.0.0.1",
        dtu_port,
        DTU_REGISTRATION,
        gauge,
        heartbeat=b"HB",
        heartbeat_s=10,
        drop_every_s=40,
        reconnect_s=2,
        seed=seed,
    )
    start = int(time.time()) * 1000
    analyser = Analyser(HJ212_MN, uploads(start, interval_s, 100_000, seed))
    tasks = [
        asyncio.create_task(dtu.run(stop)),
        asyncio.create_task(_vary(gauge, plc, stop, seed)),
        asyncio.create_task(
            analyser.run(
                "127.0.0.1", hj212_port, interval_s=interval_s, max_attempts=10**9, stop=stop
            )
        ),
    ]
    if sl651_port is not None:  # two SL 651 stations, HEX/BCD and ASCII mode
        for address, ascii_mode in (("0012345601", False), ("0012345602", True)):
            station = DemoStation(address, ascii_mode=ascii_mode)
            tasks.append(asyncio.create_task(station.run(sl651_port, stop, interval_s)))
    if panel_port is not None:  # the fire-alarm panel: a system state every interval
        tasks.append(asyncio.create_task(_panel(panel_port, stop, interval_s)))
    if dock_path is not None:  # the grid member docks the recorder once, after a patrol
        tasks.append(asyncio.create_task(_dock(dock_path, stop)))
    if broker_port is not None:  # the CIGEM crack meter: a timestamped sample on $dp
        tasks.append(asyncio.create_task(_cigem(broker_port, stop, interval_s)))
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
