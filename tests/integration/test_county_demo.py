"""`stationgw county demo`: one command brings up a 3-node cluster, PostgreSQL, demo
stations and the county service; it prints where they are, the stations' readings reach
the county, and everything is gone when it stops."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}api/health", timeout=2) as r:
            out: dict[str, Any] = json.load(r)
            return out
    except OSError:
        return None


def _logs_in(url: str, text: str) -> None:
    """The printed login works on the county page."""
    found = re.search(r"^\s+duty\s+(\S+)\s+\(duty_officer\)$", text, re.M)
    assert found is not None, text
    body = json.dumps({"name": "duty", "password": found.group(1)}).encode()
    req = urllib.request.Request(
        f"{url}api/login", body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.load(r)["user"]["role"] == "duty_officer"


PLAN = """
[[rules]]
id = "county-rain"
name = "县级方案：短时强降雨"
kind = "threshold"
metric = "rain_mm"
above = { red = 4.99 }
clear = 0.5
"""


def _plan_reaches_every_station(tmp_path: Path, text: str, file: Path | None, v: str) -> str:
    """`county plan push` → the demo stations (real `stationgw run`) apply it and report
    the version, which the county stores; what the command printed."""
    import psycopg

    county = tmp_path / "demo" / "county.toml"
    pushed = subprocess.run(
        [str(Path(sys.executable).parent / "stationgw"), "county", "plan", "push", "-c",
         str(county), *([str(file)] if file else []), "--target", "all", "--version", v],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert f"plan {v}" in pushed.stdout
    dsn = re.search(r"PostgreSQL:\s+(\S+)", text)
    assert dsn is not None
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(dsn.group(1)) as conn:
            rows = conn.execute(
                "SELECT id, plan_version, plan_errors FROM stations ORDER BY id"
            ).fetchall()
        if rows == [("town01", v, None), ("town02", v, None)]:
            break
        assert time.monotonic() < deadline, rows  # only stops a hung test
        time.sleep(0.5)
    return pushed.stdout


def test_county_demo_brings_up_a_county_and_stops_clean(tmp_path: Path) -> None:
    from gateway.devtools.cluster import free_port

    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "stationgw"), "county", "demo", "--for", "60",
         "--stations", "2", "--http-port", str(port), "--data", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        url = re.search(r"county page:\s+(http://\S+)", text)
        assert url is not None, text
        assert "NATS cluster:" in text and "PostgreSQL:" in text
        assert "station town01:" in text and "station town02:" in text
        deadline = time.monotonic() + 90
        health = _health(url.group(1))
        while not (health and health["consumer"]["readings_stored"] > 0):
            assert time.monotonic() < deadline, health  # only stops a hung test
            time.sleep(0.5)
            health = _health(url.group(1))
        assert health["fleet"]["stations"] == 2
        _logs_in(url.group(1), text)
        # the demo pushed its own plan first: the county's people and deadlines with it
        assert "county plan demo-1 pushed to all stations" in text, text
        plan = tmp_path / "plan.toml"
        plan.write_text(PLAN, encoding="utf-8")
        said = _plan_reaches_every_station(tmp_path, text, plan, "2026.12-1")
        assert "1 rules" in said and "2 county people" in said and "red: 30s" in said
        # without a file: the same rules again, with the people of the county file now
        said = _plan_reaches_every_station(tmp_path, text, None, "2026.12-2")
        assert "1 rules (the rules of the last plan for all)" in said, said
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []
