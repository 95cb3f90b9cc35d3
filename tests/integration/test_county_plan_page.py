"""A plan pushed from the county page (POST /api/plans) against a real nats-server (one
node, JetStream) and a throwaway PostgreSQL, in Debian's Chromium: a technician picks a
rules file, a target by the stations' names and pushes; the plan lands in the key-value
bucket with the county's people and deadlines, and shows in the list; a file that does
not check is refused with every problem and nothing is published; a viewer sees no form
and the API refuses it, as it refuses a request without the CSRF token; a cluster that
cannot be reached is said plainly (503) instead of hanging the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from gateway.county import users
from gateway.county.config import CountyConfig
from gateway.county.http import create_app
from tests.conftest import free_port, wait_port
from tests.county_data import COUNTY, fill
from tests.county_pg import migrate, postgres
from tests.integration.test_browser import browser, shots  # noqa: F401
from tests.integration.test_browser_county import PASSWORD, Store, audit, log_in
from tests.integration.test_county_plans import nats_node

pytestmark = pytest.mark.integration

RULES = """[[rules]]
id = "county-rain"
name = "县级方案：短时强降雨"
kind = "threshold"
metric = "rain_mm"
above = { orange = 30.0, red = 50.0 }
"""


class App(str):
    nats: str
    dsn: str


@contextlib.contextmanager
def serving(cfg: CountyConfig, dsn: str) -> Iterator[str]:
    """The county app under uvicorn on a free port; its URL."""
    http = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(cfg, Store(dsn)), host="127.0.0.1", port=http, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_port(http)
        yield f"http://127.0.0.1:{http}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    now = int(time.time() * 1000)
    with nats_node(tmp_path) as nats_url, postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        cfg = CountyConfig.model_validate({**COUNTY, "nats": {"servers": [nats_url]}})
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)
            users.add_user(conn, "tech", "technician", PASSWORD, None, now)
            users.add_user(conn, "screen", "viewer", PASSWORD, None, now)
        with serving(cfg, dsn) as url:
            out = App(url)
            out.nats, out.dsn = nats_url, dsn
            yield out


def kv(url: str, key: str) -> dict[str, Any] | None:
    import nats
    import nats.js.errors

    async def get() -> dict[str, Any] | None:
        nc = await nats.connect(url)
        try:
            bucket = await nc.jetstream().key_value("county_plans")
            entry = await bucket.get(key)
            return dict(json.loads(entry.value)) if entry.value else None
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError):
            return None
        finally:
            await nc.close()

    # a thread of its own: Playwright's sync API holds this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(get())).result()


def session(url: str, name: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=60)
    r = c.post("/api/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c, str(c.get("/api/session").json()["csrf"])


def test_a_technician_pushes_a_plan_from_the_page(
    app: App,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    # the API: a viewer may not, nobody may without the CSRF token
    viewer, csrf = session(app, "screen")
    with contextlib.closing(viewer):
        r = viewer.post("/api/plans", json={"rules": RULES}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and r.json()["detail"]["why"] == "role"
    tech, csrf = session(app, "tech")
    with contextlib.closing(tech):
        assert tech.post("/api/plans", json={"rules": RULES}).status_code == 403  # no CSRF
        r = tech.post(
            "/api/plans",
            json={"rules": RULES, "target": "group.nowhere"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 422
        assert any("--target 'group.nowhere'" in p for p in r.json()["detail"]["problems"])
    assert kv(app.nats, "all") is None  # nothing published

    # the page: a viewer sees no form
    page = log_in(browser, app, "screen", (1920, 1080))
    page.evaluate("location.hash = '#fleet'")
    page.locator("body[data-page=fleet]").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator("#plan-push").is_hidden()
    page.close()

    # a technician: a file with a mistake is refused with its key path, then the right one
    page = log_in(browser, app, "tech", (1920, 1080))
    page.evaluate("location.hash = '#fleet'")
    page.locator("#plan-push:not([hidden])").wait_for()
    options = page.locator("#plan-push select[name=target] option").all_inner_texts()
    assert options[0] == "全部站点" and "溪口镇" in options
    assert "南片区" in options  # a group by its own name
    assert any(set(o.split("、")) == {"东岭镇", "河口街道", "北山乡"} for o in options), options
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace("orange = 30.0", 'orange = "很多"'), encoding="utf-8")
    page.set_input_files("#plan-push input[type=file]", str(bad))
    page.wait_for_function("document.querySelector('#plan-push textarea').value.includes('很多')")
    page.click("#plan-push button[type=submit]")
    page.locator("#plan-push-out [data-state=refused]").wait_for()
    problems = page.locator("#plan-push-out .problems li").all_inner_texts()
    assert problems and all(p.startswith("plan: rules[0]") for p in problems), problems
    assert kv(app.nats, "station.xikou") is None
    good = tmp_path / "county.toml"
    good.write_text(RULES, encoding="utf-8")
    page.set_input_files("#plan-push input[type=file]", str(good))
    page.select_option("#plan-push select[name=target]", label="溪口镇")
    page.fill("#plan-push input[name=version]", "2026.12-7")
    page.click("#plan-push button[type=submit]")
    done = page.locator("#plan-push-out [data-state=pushed]")
    done.wait_for(timeout=60_000)
    assert done.inner_text().startswith("方案 2026.12-7 已下发至溪口镇，随附县级联系人 2 人")
    page.locator('#plans tr[data-plan="2026.12-7"]').wait_for()
    row = page.locator('#plans tr[data-plan="2026.12-7"]').inner_text().split("\t")
    assert row[1] == "溪口镇" and row[3] == "0/1", row  # sent to one station, not run yet
    assert page.locator("#plan-file").inner_text() == "county.toml"
    assert page.locator("#plan-push .filebtn").inner_text() == "选择文件…"
    page.screenshot(path=str(shots / "county-plan-push.png"), full_page=True)
    # the login name and the technician's own file name are theirs
    assert [w for w in audit(page, "zh") if w not in ("tech", "county", "toml")] == []
    assert page.errors == []

    # what the station will get: the rules, the county's people and deadlines
    sent = kv(app.nats, "station.xikou")
    assert sent is not None and sent["version"] == "2026.12-7" and sent["rules"] == RULES
    assert [p["name"] for p in sent["county"]["people"]] == ["王值班", "刘局长"]
    assert sent["county"]["deadlines"]["red"] == 600
    with psycopg.connect(app.dsn) as conn:
        (who,) = conn.execute("SELECT created_by FROM plans WHERE version = '2026.12-7'").fetchone()
        assert who == "tech"
        (audited,) = conn.execute(
            "SELECT count(*) FROM county_audit WHERE action = 'plan.push' AND ok"
        ).fetchone()
        assert audited == 1


def test_a_cluster_out_of_reach_is_said_not_hung(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    dead = free_port()  # nothing listens there
    with postgres() as dsn:
        migrate(dsn, (datetime.fromtimestamp(now / 1000, UTC),))
        cfg = CountyConfig.model_validate(
            {**COUNTY, "nats": {"servers": [f"nats://127.0.0.1:{dead}"]}}
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            users.add_user(conn, "tech", "technician", PASSWORD, None, now)
        with serving(cfg, dsn) as url:
            client, csrf = session(url, "tech")
            with contextlib.closing(client):
                started = time.monotonic()
                r = client.post("/api/plans", json={"rules": RULES}, headers={"X-CSRF-Token": csrf})
                print(f"\n503 after {time.monotonic() - started:.1f} s")
            assert r.status_code == 503 and r.json()["detail"]["why"] == "bus", r.text
