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
