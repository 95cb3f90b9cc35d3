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
from firmware_stubs.gsm_modem import GsmModemStub
from firmware_stubs.mqtt_device import run_scenario
from firmware_stubs.scenario import load_scenario
from gateway.app import Running, run_gateway
from gateway.auth.users import add_user, list_users, set_password
from gateway.config.station import Config, Database, Http, load_config
from gateway.core.errors import GatewayError
from gateway.devtools.broker import EmbeddedBroker
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
    data: Path, http_port: int, broker_port: int, modem_port: str | None = None
) -> Config:
    cfg = load_config(DEMO_CONFIG)
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
        }
    )


async def run_demo(data: Path, http_port: int, stop: asyncio.Event) -> None:
    data.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker()
    await broker.start()
    modem = demo_modem()
    cfg = demo_config(data.resolve(), http_port, broker.port, modem.port)
    users = demo_users(cfg.database.path, int(time.time() * 1000))
    scenario = load_scenario(DEMO_SCENARIO)
    gateway_stop = asyncio.Event()
    started: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    gateway = asyncio.create_task(run_gateway(cfg, gateway_stop, started=started))
    stubs: asyncio.Task[None] | None = None
    stubs_stop = asyncio.Event()
    t0 = time.monotonic()
    try:
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
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, gateway, stubs], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
    finally:
        stubs_stop.set()
        if stubs is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(stubs, 5)
        await asyncio.sleep(0.3)  # let the last reports reach the gateway
        gateway_stop.set()
        try:
            await gateway
        finally:
            await broker.stop()
            modem.close()
    _summary(cfg, time.monotonic() - t0)


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
