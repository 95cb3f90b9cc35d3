"""The reports as a township gets them: `stationgw report …` run as a real process over a
scripted month's database, printed by real headless Chromium, read back with Debian's
poppler-utils (pdfinfo, pdftotext, pdftoppm)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import REPO, Gateway
from tests.unit.reports.report_month import build

SECTIONS = 8  # the monthly report's sections, each starting a page and fitting on one


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("chromium", "pdftoppm", "pdfinfo", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run the README test command (scripts/test)")
    folder = tmp_path_factory.mktemp("station")
    build(folder).store.close()
    return folder / "station.toml"


def report(station: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "report", *args, "-c", str(station)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
        check=False,
    )


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(x for x in info.stdout.splitlines() if x.startswith("Pages:")).split()[1])


def text_of_page(pdf: Path, n: int) -> str:
    out = subprocess.run(
        ["pdftotext", "-f", str(n), "-l", str(n), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def ink(png: Path) -> float:
    """Share of pixels that are not (nearly) white."""
    with Image.open(png) as im:
        grey = im.convert("L")
        hist = grey.histogram()
        return sum(hist[:235]) / (grey.width * grey.height)


def test_monthly_pdf_pages_headers_and_ink(station: Path, tmp_path: Path) -> None:
    out = tmp_path / "monthly.pdf"
    done = report(station, "monthly", "--month", "2026-07", "--format", "pdf", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF")
    n = pages(out)
    assert n == SECTIONS, f"{n} pages: a section spilled over its page (or one went missing)"
    for i in range(1, n + 1):
        text = text_of_page(out, i)
        assert "清水镇应急管理站" in text and "2026年7月" in text, f"page {i} lacks the header"
        assert f"第{i}页/共{n}页" in text.replace(" ", "")
    first = text_of_page(out, 1)
    assert "本月共发布预警4次" in first and "暴雨日2天" in first
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == n
    for png in pngs:
        assert ink(png) > 0.01, f"{png.name} is blank"
    # charts are drawn: the rainfall page has far more ink than text alone would give
    assert ink(pngs[4]) > 0.03


def test_handover_and_ledger_pdfs(station: Path, tmp_path: Path) -> None:
    hand = tmp_path / "handover.pdf"
    done = report(station, "handover", "--id", "1", "--out", str(hand))
    assert done.returncode == 0, done.stderr
    assert pages(hand) == 1
    text = text_of_page(hand, 1)
    assert "值班交接班记录" in text and "赵敏" in text and "钱鹏" in text
    assert "督导升级" in text  # what happened on the shift: the escalation at 14:55
    led = tmp_path / "ledger.pdf"
    done = report(
        station, "ledger", "--from", "2026-07-01", "--to", "2026-08-01", "--out", str(led)
    )
    assert done.returncode == 0, done.stderr
    body = "".join(text_of_page(led, i) for i in range(1, pages(led) + 1))
    assert "隐患台账" in body and "0003" in body and "0013" in body and "0002" not in body
    csv = report(
        station,
        "ledger",
        "--from",
        "2026-07-01",
        "--to",
        "2026-08-01",
        "--format",
        "csv",
        "--out",
        "-",
    )
    assert csv.returncode == 0 and csv.stdout.count("\n") == 12  # the header and 11 tickets


def test_clear_errors(station: Path) -> None:
    done = report(station, "monthly", "--month", "2026/07")
    assert done.returncode == 2 and "expected YYYY-MM" in done.stderr
    done = report(station, "handover", "--id", "99", "--format", "html", "--out", "-")
    assert done.returncode == 1 and "handover 99 does not exist" in done.stderr


def test_the_running_gateway_serves_the_monthly_report(gateway: Gateway) -> None:
    gateway.start()
    month = time.strftime("%Y-%m", time.localtime())
    viewer = gateway.api("viewer", timeout=120)  # the wall screen's role may read reports
    assert (
        httpx.get(f"{gateway.url}/api/reports/monthly", params={"month": month}).status_code == 401
    )
    r = viewer.get("/api/reports/monthly", params={"month": month})
    assert r.status_code == 200, r.text
    assert "测试站" in r.text and "月度安全形势分析报告" in r.text
    r = viewer.get("/api/reports/monthly", params={"month": month, "format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert viewer.get("/api/reports/handovers/1").status_code == 404
    viewer.close()
