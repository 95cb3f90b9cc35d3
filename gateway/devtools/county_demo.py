"""`stationgw county demo`: a county on this machine in one command — a local 3-node NATS
JetStream cluster (with its MQTT listener), a throwaway PostgreSQL, a few demo stations
(each a real `stationgw run` with a `nats` uplink, its own Mosquitto and rain gauges) and
the county service with its page. Prints the URLs; everything stops with Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from gateway.county.config import load_county_config
from gateway.county.service import run
from gateway.devtools.cluster import NatsCluster
from gateway.devtools.county_sim import SimStation, county_file
from gateway.devtools.pg import ThrowawayPostgres

log = logging.getLogger("stationgw.county.demo")

TOWNS = ["清水镇", "河山镇", "石门乡", "龙泉镇", "白沙乡", "桃源镇", "青山乡", "红岩镇"]


async def run_county_demo(data: Path, http_port: int, stations: int, stop: asyncio.Event) -> None:
    if data.exists():
        shutil.rmtree(data)  # a demo starts afresh
    data.mkdir(parents=True)
    cluster = NatsCluster(data / "nats", 3, mqtt=True)
    pg = ThrowawayPostgres(data / "pg")
    sims: list[SimStation] = []
    try:
        cluster.start()
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        ids = [(f"town{i + 1:02d}", TOWNS[i % len(TOWNS)]) for i in range(stations)]
        config = data / "county.toml"
        config.write_text(county_file("示范县应急管理局", cluster.urls, pg.dsn, ids, http_port))
        cfg = load_county_config(config)
        service = asyncio.create_task(run(cfg, stop), name="county")
        for sid, name in ids:
            sim = SimStation(data / sid, sid, name, 20, cluster.urls, interval_s=10)
            await asyncio.to_thread(sim.start)
            sims.append(sim)
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
            + "logins: the county page's users and roles come with the county duty room; "
            "this build has none to print (GET /api/health needs no login).\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        await service
    finally:
        for sim in sims:
            await asyncio.to_thread(sim.stop)
        cluster.stop()
        await asyncio.to_thread(pg.remove)
