"""`stationgw county bench --quick` in CI: the whole county simulation (3-node cluster,
PostgreSQL, two county instances, three real gateways in network namespaces, 197
generated stations) runs, every key is there, nothing is lost or stored twice, and the
namespaces it made are gone.

No figure is checked against a goal: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.devtools.county_bench import KEYS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the bench makes network namespaces: root"),
]


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("sgw")}


@pytest.mark.timeout(600)
def test_quick_county_bench_runs_and_loses_nothing(tmp_path: Path) -> None:
    before = _namespaces()
    out = tmp_path / "county.json"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "stationgw"), "county", "bench", "--quick",
         "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    figures = result["figures"]
    assert [k for k in KEYS if k not in figures] == []
    assert figures["county.lost"] == 0
    assert figures["county.duplicates"] == 0
    assert figures["county.steady_readings_per_s"] > 0
    assert figures["county.failover_s"] is not None
    assert figures["county.backlog_drain_s"] is not None
    assert figures["county.backlog_readings"] > 0  # the stations did buffer
    assert result["run"] == "quick"
    assert _namespaces() == before  # cleaned up
