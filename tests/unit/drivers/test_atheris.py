"""atheris (where it installs) fuzzes every codec for a bounded number of runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

REPO = Path(__file__).resolve().parents[3]
SEEDS = {
    "sl651": bytes.fromhex(
        "7E7E000081120005FFFF3200200225B9260701063006F1F1008112000550F0F02607010630"
        "26190018483812120003C648"
    ),
    "modbus-rtu": bytes.fromhex("02030000000305F8"),
    "hj212": b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    b"Flag=5;CP=&&RtdInterval=30&&1C80\r\n",
}


@pytest.mark.parametrize("codec", ["sl651", "gb26875", "modbus-rtu", "cigem", "handheld", "hj212"])
def test_atheris_finds_no_foreign_exception(codec: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if codec in SEEDS:
        (corpus / "seed").write_bytes(SEEDS[codec])
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz_harness",
            codec,
            "-runs=20000",
            "-max_len=512",
            "-seed=1",
            str(corpus),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 20000 runs" in r.stderr
