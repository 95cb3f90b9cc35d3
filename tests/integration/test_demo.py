"""`stationgw demo`: embedded broker, stubs, gateway and page; a ticket within a minute."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def stationgw(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def wait_health(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "demo exited early"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/health", timeout=1).json()["broker"]["connected"]:
                return
        time.sleep(0.2)
    raise TimeoutError("demo did not come up")


def test_demo_opens_a_ticket_and_stops_by_itself(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        stationgw("demo", "--for", "25", "--data", str(tmp_path), "--http-port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    wait_health(url, proc)
    page = httpx.get(url + "/").text
    assert "/static/app.js" in page
    assert httpx.get(url + "/static/app.js").status_code == 200
    assert "/api/tickets" in httpx.get(url + "/openapi.json").json()["paths"]
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
    # the field links show a reading each within the demo's 25 s
    assert re.search(r"first reading via 4G DTU: 下溪村4G雨量站 累计雨量 = [\d.]+ mm", out)
    assert re.search(r"first reading via Modbus TCP: 上坪泵站PLC 集水井水位 = [\d.]+ m", out)
    assert re.search(r"first reading via HJ 212: 工业园废气在线监测仪 \w+ = [\d.]+ mg/m3", out)
    assert re.search(
        r"first reading via SL651 HEX: 上坪河水文站 (当前雨量|累计雨量|河道水位|电源电压) = [\d.]+ (mm|m|V)",
        out,
    )
    assert re.search(
        r"first reading via SL651 ASCII: 下溪村雨量水位站 (当前雨量|累计雨量|河道水位|电源电压) = [\d.]+ (mm|m|V)",
        out,
    )
    assert re.search(
        r"first reading via Modbus RTU \(pseudo-terminal\): 上坪河RS-485水位计 RS-485水位 = 12.36 m",
        out,
    )  # 1236 cm in register 0 of unit 5, scale 0.01
    assert (
        "handheld dock: 李明的巡查记录仪 uploaded 2 patrol records, gateway answered 'OK 2'" in out
    )
    assert re.search(r"first reading via CIGEM: 下溪村普适型裂缝计 裂缝宽度 = [\d.]+ mm", out)
    assert (
        "first frame via GB/T 26875.3: 镇政府大楼火灾报警控制器 系统状态 正常运行, confirmed" in out
    )
    # the technician's queued command, sent after the station's first report and answered
    assert re.search(
        r"command answered: 上坪河水文站 查询软件版本 \(version\): 软件版本: SLDEMO-2.1 "
        r"\(queued by tech, answered after \d+ s\)",
        out,
    )
    assert re.search(r"rg-dtu +下溪村4G雨量站: [1-9]\d* readings", out)
    # the demo makes its users and prints how to log in; no fixed passwords
    logins = dict(
        re.findall(
            r"^    (\w+)\s+(\S+)\s+(?:duty_officer|technician|leader|viewer|admin)$", out, re.M
        )
    )
    assert sorted(logins) == ["admin", "duty", "leader", "leader2", "screen", "tech"]
    assert len(set(logins.values())) == 6
    tickets = json.loads(
        subprocess.run(
            stationgw("tickets", "list", "--data", str(tmp_path), "--json"),
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout
    )
    rain = [t for t in tickets if t["rule"] == "rain-burst" and t["device"] == "rg-01"]
    assert len(rain) == 1, tickets
    assert rain[0]["level"] in ("blue", "yellow")
    # the database describes itself: the monthly report from --data alone (no -c)
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))  # Asia/Shanghai
    report = subprocess.run(
        stationgw(
            "report",
            "monthly",
            "--month",
            month,
            "--data",
            str(tmp_path),
            "--format",
            "html",
            "--out",
            "-",
        ),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert report.returncode == 0, report.stderr
    assert "清水镇应急管理站" in report.stdout and "月度安全形势分析报告" in report.stdout


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        stationgw("demo", "--data", str(tmp_path), "--http-port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    wait_health(f"http://127.0.0.1:{port}", proc)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert "readings stored" in out


def test_demo_shows_sms_voice_a_redial_a_key_press_and_an_escalation(tmp_path: Path) -> None:
    """What a new user sees in the demo's first minutes (its policy is compressed to
    seconds; the modem stub plays the people): read back from the demo's database."""
    port = free_port()
    proc = subprocess.run(
        stationgw("demo", "--for", "80", "--data", str(tmp_path), "--http-port", str(port)),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = proc.stdout + proc.stderr
    assert "voice call to 李明: no_answer" in log
    assert "voice call to 李明: confirmed key 1" in log
    assert re.search(r"warning #\d+ escalated 上坪河段 蓝色: calling 吴建 \(escalated\)", log), log
    from gateway.tickets.records import read_attempts, read_calls
    from gateway.tickets.store import StationStore

    store = StationStore(tmp_path / "station.db", writer=False)
    try:
        warnings = {t.point: t for t in store.tickets() if t.kind == "warning"}
        xiaxi = read_attempts(store, warnings["xiaxi-slope"].id)
        li = [(a.channel, a.outcome) for a in xiaxi if a.person == "li-wg"]
        assert (
            li[:4]
            == [
                ("sms", "sent"),
                ("mqtt", "sent"),
                ("voice", "no_answer"),
                ("voice", "confirmed"),  # the redial, answered with 1
            ]
            or li[:4]
            == [("mqtt", "sent"), ("sms", "sent"), ("voice", "no_answer"), ("voice", "confirmed")]
        )
        calls = read_calls(store, warnings["shangping-river"].id)
        assert [(c.name, c.why, c.outcome) for c in calls][:2] == [
            ("刘芳", "issued", "escalated"),
            ("吴建", "escalated", "acknowledged"),
        ]
        liu = [a.outcome for a in read_attempts(store, calls[0].ticket_id) if a.person == "liu-wg"]
        assert liu.count("no_answer") == 3  # the call and its two redials
    finally:
        store.close()
