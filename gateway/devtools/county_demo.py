"""`stationgw county demo`: a county on this machine in one command — a local 3-node NATS
JetStream cluster (with its MQTT listener), a throwaway PostgreSQL, a few demo stations
(each a real `stationgw run` with a `nats` uplink, its own Mosquitto and rain gauges) and
the county service with its page. Prints the URLs; everything stops with Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from pathlib import Path

from gateway.county.config import CountyConfig, load_county_config
from gateway.county.plans import make_plan, push
from gateway.county.service import run
from gateway.county.store import CountyStore
from gateway.county.users import add_user_cli
from gateway.devtools.cluster import NatsCluster
from gateway.devtools.county_sim import SimStation, county_file
from gateway.devtools.demo import demo_modem
from gateway.devtools.pg import ThrowawayPostgres

log = logging.getLogger("stationgw.county.demo")

# Each demo station warns on its first rain gauge (a report every 10 s, 0–5 mm): yellow
# within a minute or two, orange now and then; nobody at the stations answers, so the
# county's short demo deadlines escalate them to its duty officer and leader.
DEMO_RULES = """
[[rules]]
id = "rain-burst"
name = "短时强降雨"
kind = "threshold"
metric = "rain_mm"
devices = ["rg-000"]
above = { yellow = 4.0, orange = 4.9 }
clear = 0.5
"""

DEMO_DUTY = """
[escalation]
red_s = 30
orange_s = 60
yellow_s = 120
[[people]]
id = "wang"
name = "王值班"
phone = "13900000001"
roles = ["duty_officer"]
[[people]]
id = "liu"
name = "刘局长"
phone = "13900000003"
roles = ["leader"]
grid = "county"
[[duty]]
officer = "wang"
start = "00:00"
end = "00:00"
[notify.sms]
port = "{modem}"
"""

# who may log in to the county page: (user, role, county person); new passwords each run
DEMO_USERS = (
    ("duty", "duty_officer", "wang"),
    ("leader", "leader", "liu"),
    ("screen", "viewer", None),
)

TOWNS = ["清水镇", "河山镇", "石门乡", "龙泉镇", "白沙乡", "桃源镇", "青山乡", "红岩镇"]


async def run_county_demo(data: Path, http_port: int, stations: int, stop: asyncio.Event) -> None:
    if data.exists():
        shutil.rmtree(data)  # a demo starts afresh
    data.mkdir(parents=True)
    cluster = NatsCluster(data / "nats", 3, mqtt=True)
    pg = ThrowawayPostgres(data / "pg")
    sims: list[SimStation] = []
    modem = demo_modem()  # the county's SMS modem (firmware_stubs/gsm_modem.py)
    try:
        cluster.start()
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        ids = [(f"town{i + 1:02d}", TOWNS[i % len(TOWNS)]) for i in range(stations)]
        config = data / "county.toml"
        duty = DEMO_DUTY.replace("{modem}", modem.port)
        config.write_text(
            county_file("示范县应急管理局", cluster.urls, pg.dsn, ids, http_port, duty=duty)
        )
        cfg = load_county_config(config)
        await asyncio.to_thread(CountyStore(pg.dsn).migrate)
        logins = []
        for user, role, person in DEMO_USERS:
            password = secrets.token_urlsafe(9)
            await asyncio.to_thread(add_user_cli, pg.dsn, user, role, password, person)
            logins.append(f"  {user:<7} {password}   ({role})\n")
        rules = data / "rules.toml"
        rules.write_text(DEMO_RULES, encoding="utf-8")
        service = asyncio.create_task(run(cfg, stop), name="county")
        await asyncio.sleep(0.2)  # the page's port taken first: a port in use ends it here
        if service.done():
            await service
        for sid, name in ids:
            sim = SimStation(data / sid, sid, name, 20, cluster.urls, interval_s=10, rules=rules)
            await asyncio.to_thread(sim.start)
            sims.append(sim)
        plan = await push_plan(cfg)
        mqtt = [n.mqtt_port for n in cluster.nodes]
        print(
            f"county page:   http://127.0.0.1:{http_port}/   (health: /api/health)\n"
            f"county file:   {config}\n"
            f"NATS cluster:  {', '.join(cluster.urls)} (MQTT listeners on ports "
            f"{', '.join(str(p) for p in mqtt)})\n"
            f"PostgreSQL:    {pg.dsn}\n"
            + "".join(
                f"station {s.station}: http://127.0.0.1:{s.http_port}/ ({s.config})\n" for s in sims
            )
            + f"county plan {plan} pushed to all stations: the rules, the county's people "
            "and deadlines (`stationgw county plan push`)\n"
            + f"county SMS modem: {modem.port} (firmware_stubs/gsm_modem.py)\n"
            "log in as (passwords new every run):\n" + "".join(logins) + "Ctrl-C stops everything.",
            flush=True,
        )
        await service
    finally:
        for sim in sims:
            await asyncio.to_thread(sim.stop)
        cluster.stop()
        await asyncio.to_thread(pg.remove)
        modem.close()


async def push_plan(cfg: CountyConfig) -> str:
    """The demo rules as the county's plan for all stations, with its people and deadlines."""
    import time

    plan = make_plan(cfg, DEMO_RULES, "all", "demo-1", time.time_ns() // 1_000_000, "demo")
    await push(cfg, plan, "demo")
    return plan.version
