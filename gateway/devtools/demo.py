"""`stationgw demo`: broker, gateway, simulated devices and the page in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from drivers.link.broker import Broker
from drivers.sl651 import commands as sl651_commands
from firmware_stubs.field_demo import run_field_stubs, start_rtu_bus, stop_rtu_bus
from firmware_stubs.gsm_modem import GsmModemStub
from firmware_stubs.modbus_tcp_slave import TcpSlave, free_port
from firmware_stubs.mqtt_device import run_scenario
from firmware_stubs.scenario import load_scenario
from gateway.app import Running, run_gateway
from gateway.auth.users import add_user, list_users, set_password
from gateway.config.station import Config, Database, Http, load_config
from gateway.core.errors import GatewayError
from gateway.devtools.broker import EmbeddedBroker
from gateway.storage import commands
from gateway.tickets.store import StationStore

T = TypeVar("T")

log = logging.getLogger("stationgw.demo")

DEMO_CONFIG = Path(str(resources.files("gateway.devtools") / "demo_station.toml"))
DEMO_SCENARIO = Path(str(resources.files("firmware_stubs") / "scenarios" / "rainstorm.toml"))
# who may log in to the demo: (user, role, people-file id); passwords are new every run
DEMO_USERS = (
    ("duty", "duty_officer", "zhao-zb"),
    ("tech", "technician", "sun-js"),
    ("leader", "leader", "wang-zz"),
    ("leader2", "leader", "chen-cz"),  # a second person, so 核销 (write-off) can be walked
    ("screen", "viewer", None),
    ("admin", "admin", None),
)


def demo_users(db: Path, now: int) -> list[tuple[str, str, str]]:
    """Make the demo's users (or give them new passwords): (name, role, password)."""
    store = StationStore(db)
    out = []
    try:
        known = {u["name"] for u in list_users(store)}
        for name, role, person in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            if name in known:
                set_password(store, name, password, now)
            else:
                add_user(store, name, role, password, person, now)
            out.append((name, role, password))
    finally:
        store.close()
    return out


# how the far ends of the demo's calls answer (firmware_stubs/gsm_modem.py scenarios)
DEMO_PHONES = {
    "13800000001": ["no_answer", "confirm", "confirm", "confirm", "confirm", "confirm"],  # 李明
    "13800000008": ["confirm"] * 6,  # 吴建, the village head above 刘芳
    "13800000006": ["busy", "confirm", "confirm", "confirm"],  # 赵敏, the duty officer
}


def demo_modem() -> GsmModemStub:
    stub = GsmModemStub.open(model="quectel")
    stub.scenarios.update({k: list(v) for k, v in DEMO_PHONES.items()})
    return stub


def demo_config(
    data: Path,
    http_port: int,
    broker_port: int,
    plc_port: int = 1502,
    modem_port: str | None = None,
) -> Config:
    cfg = load_config(DEMO_CONFIG)
    ports = [
        p.model_copy(update={"path": data / DEMO_PTYS[p.id]}) if p.id in DEMO_PTYS else p
        for p in cfg.serial_ports
    ]
    cfg = cfg.model_copy(update={"serial_ports": ports})
    notify = cfg.notify
    if modem_port is not None and notify.sms is not None:
        sms = notify.sms.model_copy(update={"port": Path(modem_port)})
        notify = notify.model_copy(update={"sms": sms})
    return cfg.model_copy(
        update={
            "broker": Broker(**{**cfg.broker.model_dump(), "port": broker_port}),
            "database": Database(path=data / "station.db"),
            "http": Http(host="127.0.0.1", port=http_port),
            "notify": notify,
            **_field_links(cfg, plc_port),
        }
    )


# --- field links: a DTU, a Modbus TCP PLC, an HJ 212 analyser ---------------
FIELD_DEVICES = (
    "rg-dtu",
    "plc-01",
    "gas-01",
    "sl-hex",
    "sl-ascii",
    "geo-01",
    "fp-01",
    "wl-rtu",
)
DEMO_PTYS = {"rs485-demo": "rtu-gw", "dock-demo": "dock-gw"}  # serial port -> pty link
SL651_MODE = {
    "sl-hex": "SL651 HEX",
    "sl-ascii": "SL651 ASCII",
    "wl-rtu": "Modbus RTU (pseudo-terminal)",
}
DEMO_COMMAND = ("sl-hex", "version")  # queued by the technician at start, answered in seconds


def _field_links(cfg: Config, plc_port: int) -> dict[str, Any]:
    """Listeners on free ports (0), the PLC stub's port on its device."""
    devices = [
        d.model_copy(update={"transport": d.transport.model_copy(update={"port": plc_port})})
        if d.transport.kind == "modbus_tcp"
        else d
        for d in cfg.devices
    ]
    dtus = [
        d.model_copy(update={"listen": d.listen.model_copy(update={"port": 0})}) for d in cfg.dtu
    ]
    out: dict[str, Any] = {"devices": devices, "dtu": dtus}
    if cfg.sl651 is not None and cfg.sl651.listen is not None:
        listen = cfg.sl651.listen.model_copy(update={"port": 0})
        out["sl651"] = cfg.sl651.model_copy(update={"listen": listen})
    if cfg.gb26875 is not None and cfg.gb26875.listen is not None:
        listen = cfg.gb26875.listen.model_copy(update={"port": 0})
        out["gb26875"] = cfg.gb26875.model_copy(update={"listen": listen})
    if cfg.hj212 is not None and cfg.hj212.listen is not None:
        listen = cfg.hj212.listen.model_copy(update={"port": 0})
        out["hj212"] = cfg.hj212.model_copy(update={"listen": listen})
    return out


async def _field_stubs(
    running: Running, plc: TcpSlave, stop: asyncio.Event, broker_port: int, data: Path
) -> None:
    dock_path = data / "dock-dev" if (data / "dock-dev").exists() else None
    field = running.field
    dtu = field.drivers.get("dtu") if field is not None else None
    hj212 = field.drivers.get("hj212") if field is not None else None
    sl = field.drivers.get("sl651") if field is not None else None
    if dtu is None or hj212 is None or hj212.server is None:
        return
    sl651_port = None
    if sl is not None and sl.server is not None:
        sl651_port = sl.server.sockets[0].getsockname()[1]
    panel = field.drivers.get("gb26875") if field is not None else None
    panel_port = None
    if panel is not None and panel.server is not None:
        panel_port = panel.server.sockets[0].getsockname()[1]
    await run_field_stubs(
        dtu_port=dtu.server.servers[0].sockets[0].getsockname()[1],
        plc=plc,
        hj212_port=hj212.server.sockets[0].getsockname()[1],
        sl651_port=sl651_port,
        panel_port=panel_port,
        dock_path=dock_path,
        broker_port=broker_port,
        stop=stop,
    )


async def _watch_field(cfg: Config, stop: asyncio.Event) -> None:
    """Print each field link's first reading, with the device's and metric's names."""
    names = {d.id: d for d in cfg.devices if d.id in FIELD_DEVICES}
    shown: set[str] = set()

    def latest() -> dict[tuple[str, str], tuple[int, float, int]]:
        store = StationStore(cfg.database.path, writer=False)
        try:
            return store.latest()
        finally:
            store.close()

    told = False
    while (shown != set(names) or not told) and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        for device, name, answer, queued, done in await asyncio.to_thread(_answered, cfg):
            if told:
                break
            told = True
            title = sl651_commands.COMMANDS[name].title
            print(
                f"  command answered: {names[device].name} {title} ({name}): {answer} "
                f"(queued by tech, answered after {(done - queued) / 1000:.0f} s)",
                flush=True,
            )
        for device in await asyncio.to_thread(_seen, cfg):
            d = names.get(device)
            if d is None or device in shown or d.transport.kind != "gb26875":
                continue
            shown.add(device)
            print(
                f"  first frame via GB/T 26875.3: {d.name} 系统状态 正常运行, confirmed",
                flush=True,
            )
        for (device, metric), (_, value, _) in (await asyncio.to_thread(latest)).items():
            d = names.get(device)
            if d is None or device in shown:
                continue
            shown.add(device)
            spec = d.metrics[metric]
            via = {
                "modbus_rtu": "4G DTU",
                "modbus_tcp": "Modbus TCP",
                "hj212": "HJ 212",
                "cigem": "CIGEM",
                "gb26875": "GB/T 26875.3",
            }
            how = SL651_MODE.get(d.id) or via.get(d.transport.kind, d.transport.kind)
            print(
                f"  first reading via {how}: "
                f"{d.name} {spec.name or metric} = {value:g} {spec.unit}",
                flush=True,
            )


def _queue_demo_command(cfg: Config) -> None:
    """The technician's command of the demo: asks the HEX station for its software version."""
    device, name = DEMO_COMMAND
    store = StationStore(cfg.database.path)
    try:
        with store.transaction():
            commands.enqueue(
                store,
                int(time.time() * 1000),
                device=device,
                name=name,
                args={},
                user="tech",
                ttl_ms=3_600_000,
                timeout_ms=30_000,
                max_attempts=3,
                source="demo",
            )
    finally:
        store.close()


def _seen(cfg: Config) -> list[str]:
    store = StationStore(cfg.database.path, writer=False)
    try:
        return [d.id for d in store.devices() if d.last_seen]
    finally:
        store.close()


def _answered(cfg: Config) -> list[tuple[str, str, str, int, int]]:
    store = StationStore(cfg.database.path, writer=False)
    try:
        rows = store.conn.execute(
            "SELECT device, name, answer, created_at, done_at FROM device_commands "
            "WHERE state = 'answered' ORDER BY id"
        ).fetchall()
        return [(str(a), str(b), str(c), int(d), int(e)) for a, b, c, d, e in rows]
    finally:
        store.close()


def _field_summary(cfg: Config) -> None:
    store = StationStore(cfg.database.path, writer=False)
    try:
        latest = store.latest()
        counts = {
            d: sum(len(store.readings(d, m, 0, 2**62)) for (dd, m) in latest if dd == d)
            for d in FIELD_DEVICES
        }
    finally:
        store.close()
    for d in cfg.devices:
        if d.id not in FIELD_DEVICES:
            continue
        values = ", ".join(
            f"{m} {v:g} {d.metrics[m].unit}" for (dd, m), (_, v, _) in latest.items() if dd == d.id
        )
        print(f"    {d.id:<7} {d.name}: {counts[d.id]} readings; latest {values or '-'}")


# --- end field links ----------------------------------------------------------------


async def run_demo(data: Path, http_port: int, stop: asyncio.Event) -> None:
    data.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker()
    await broker.start()
    plc = TcpSlave({1: [200]}, port=free_port())  # the Modbus TCP PLC
    await plc.start()
    modem = demo_modem()
    cfg = demo_config(data.resolve(), http_port, broker.port, plc.port, modem.port)
    users = demo_users(cfg.database.path, int(time.time() * 1000))
    _queue_demo_command(cfg)
    scenario = load_scenario(DEMO_SCENARIO)
    gateway_stop = asyncio.Event()
    started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    gateway = asyncio.create_task(run_gateway(cfg, gateway_stop, started=started))
    stubs: asyncio.Task[None] | None = None
    field_stubs: asyncio.Task[None] | None = None
    watch: asyncio.Task[None] | None = None
    stubs_stop = asyncio.Event()
    t0 = time.monotonic()
    rtu = None
    try:
        rtu = await start_rtu_bus(data.resolve())  # Modbus RTU slave behind a socat pty pair
        running = await _first(started, gateway)
        await _first(asyncio.ensure_future(running.broker_up.wait()), gateway)
        print(
            f"\n  stationgw demo — {cfg.station.name}\n"
            f"  web page:  http://127.0.0.1:{running.http_port}/\n"
            f"  database:  {cfg.database.path}\n"
            f"  broker:    mqtt://127.0.0.1:{broker.port} (embedded amqtt)\n"
            f"  4G modem:  {modem.port} (firmware_stubs/gsm_modem.py: SMS and voice calls)\n"
            f"  devices:   {', '.join(d.id for d in scenario.devices)}; "
            "a scripted rainstorm opens a ticket within the first minute.\n"
            f"  field links: {', '.join(FIELD_DEVICES)} (4G DTU, Modbus TCP, HJ 212, "
            "SL651 HEX and ASCII over TCP, CIGEM over MQTT, GB/T 26875.3 alarm panel, "
            "Modbus RTU on a pseudo-terminal)\n"
            f"  command:   {DEMO_COMMAND[1]} queued for {DEMO_COMMAND[0]} by tech\n"
            "  log in as (passwords new every run):\n"
            + "".join(f"    {n:<7} {p:<14} {r}\n" for n, r, p in users)
            + "  Ctrl-C stops.\n",
            flush=True,
        )
        stubs = asyncio.create_task(
            run_scenario(
                scenario,
                station=cfg.station.id,
                host="127.0.0.1",
                port=broker.port,
                protocol="3.1.1",
                stop=stubs_stop,
            )
        )
        field_stubs = asyncio.create_task(
            _field_stubs(running, plc, stubs_stop, broker.port, data.resolve())
        )
        watch = asyncio.create_task(_watch_field(cfg, stubs_stop))
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, gateway, stubs], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
    finally:
        stubs_stop.set()
        for t in (field_stubs, watch):
            if t is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(t, 5)
        await plc.stop()
        if stubs is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(stubs, 5)
        await asyncio.sleep(0.3)  # let the last reports reach the gateway
        gateway_stop.set()
        try:
            await gateway
        finally:
            await stop_rtu_bus(rtu)  # after the gateway let go of the lines
            await broker.stop()
            modem.close()
    _summary(cfg, time.monotonic() - t0)
    _field_summary(cfg)


async def _first(wanted: asyncio.Future[T], gateway: asyncio.Task[None]) -> T:
    """Wait for `wanted`, unless the gateway ends first (its error is raised then)."""
    pending: list[asyncio.Future[Any]] = [wanted, gateway]
    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if not wanted.done():
        gateway.result()
        raise GatewayError("the gateway stopped during start-up")
    return wanted.result()


def _summary(cfg: Config, elapsed: float) -> None:
    store = StationStore(cfg.database.path, writer=False)
    try:
        readings = store.count_readings()
        tickets = store.tickets()
    finally:
        store.close()
    print(
        f"\n  demo ran {elapsed:.0f} s: {readings} readings stored, "
        f"{len(tickets)} tickets in the ledger",
        flush=True,
    )
    for t in tickets[:10]:
        level = t.level.label if t.level else "fault"
        where = f"{t.device}/{t.metric} = {t.value}" if t.device else f"@{t.point}, {t.state}"
        print(f"    #{t.id} {level:<6} {t.title} ({where})")
