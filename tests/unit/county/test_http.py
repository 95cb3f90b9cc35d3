"""The county API's access rules (the station's): public health and session, 401 without
a session, 403 without the CSRF token or for a viewer, 409 on a county ticket taken
already, 422 on bad parameters; over a throwaway PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
import uvicorn

from gateway.county import escalation, users
from gateway.county.http import create_app
from tests.conftest import free_port
from tests.county_data import config, fill
from tests.county_pg import migrate, postgres

PASSWORD = "long-enough-pw"


class Source:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def connect(self) -> Any:
        return psycopg.connect(self.dsn)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    now = int(time.time() * 1000)
    with postgres() as dsn:
        at = datetime.fromtimestamp(now / 1000, UTC)
        migrate(dsn, tuple(at - timedelta(days=d) for d in range(0, 70, 5)))
        cfg = config()
        with psycopg.connect(dsn, autocommit=True) as conn:
            fill(conn, now)
            escalation.step(conn, cfg, now)
            users.add_user(conn, "wang", "duty_officer", PASSWORD, "wang", now)
            users.add_user(conn, "wall", "viewer", PASSWORD, None, now)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(cfg, Source(dsn)), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                for _ in range(400):  # until it answers
                    try:
                        c.get("/api/health")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                yield c
        finally:
            server.should_exit = True
            thread.join(30)


def log_in(client: httpx.Client, name: str) -> str:
    r = client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf: str = r.json()["csrf"]
    return csrf


def test_public_and_closed_routes(client: httpx.Client) -> None:
    client.cookies.clear()
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["county"]["name"] == "青山县应急管理局"
    assert client.get("/api/session").json() == {"user": None, "setup": False}
    for path in ("/api/overview", "/api/map", "/api/plans", "/api/stations/xikou", "/api/audit"):
        assert client.get(path).status_code == 401, path
    r = client.post("/api/login", json={"name": "wang", "password": "wrong-password"})
    assert r.status_code == 401
    assert client.get("/").status_code == 200 and "县级值班室" in client.get("/").text
    assert client.get("/county/county.js").status_code == 200
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200


def test_a_viewer_reads_and_may_not_take_and_csrf_is_checked(client: httpx.Client) -> None:
    client.cookies.clear()
    csrf = log_in(client, "wall")
    ov = client.get("/api/overview").json()
    (tk,) = [c for c in ov["county_tickets"] if c["state"] == "open"]
    url = f"/api/county-tickets/{tk['id']}/ack"
    assert client.post(url, json={}, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.get("/api/audit").status_code == 403
    client.cookies.clear()
    csrf = log_in(client, "wang")
    assert client.post(url, json={}).status_code == 403  # no CSRF token
    assert client.post(url, json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = client.post(url, json={"note": "已电话联系溪口镇"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["station"] == "xikou"
    assert client.post(url, json={}, headers={"X-CSRF-Token": csrf}).status_code == 409
    assert (
        client.post(
            "/api/county-tickets/0/ack", json={}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 422
    )
    assert client.post(url, json={"x": 1}, headers={"X-CSRF-Token": csrf}).status_code == 422


def test_parameters_are_checked(client: httpx.Client) -> None:
    client.cookies.clear()
    log_in(client, "wang")
    assert client.get("/api/report?month=2026-13").status_code == 422
    assert client.get("/api/report?month=2026-11").status_code == 200
    assert client.get("/api/stations/nowhere").status_code == 404
    base = "/api/stations/xikou/readings?device=rg-01&metric=rain_mm"
    assert client.get(base + "&from=10&to=5").status_code == 422
    pts = client.get(base).json()["points"]
    assert len(pts) > 200


def test_the_monthly_report_as_a_document(client: httpx.Client) -> None:
    client.cookies.clear()
    log_in(client, "wang")
    month = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    html = client.get(f"/api/report?month={month}&format=html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    text = html.text
    assert "各乡镇安全形势分析报告" in text and "<svg" in text  # the station's chart
    for name in ("溪口镇", "山尾乡", "东岭镇", "河口街道", "北山乡"):
        assert name in text
    assert "督导到县 1 次" in text and "有预警督导到县的乡镇：溪口镇" in text
    assert "None" not in text and "NaN" not in text
    pdf = client.get(f"/api/report?month={month}&format=pdf", timeout=180)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
