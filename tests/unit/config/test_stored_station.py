"""The database describes itself: the station file stored in it is read back whole, and
the commands that read a database work with --data alone (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import stored
from gateway.config.station import Config, load_config
from gateway.tickets.store import StationStore

DEMO = Path(__file__).parents[3] / "gateway" / "devtools" / "demo_station.toml"


def test_the_station_file_round_trips_through_the_database(tmp_path: Path) -> None:
    cfg = load_config(DEMO)
    store = StationStore(tmp_path / "station.db")
    try:
        assert stored.load(tmp_path / "station.db") is None  # nothing stored yet
        stored.save(store.conn, cfg, {"demo_rules.toml": "# rules"}, 1)
        stored.save(store.conn, cfg, {"demo_rules.toml": "# rules, reloaded"}, 2)  # replaced
    finally:
        store.close()
    found = stored.load(tmp_path / "station.db")
    assert found is not None
    back, rules, at = found
    assert back == Config.model_validate(stored.redacted(cfg.model_dump(mode="json")))
    assert rules == {"demo_rules.toml": "# rules, reloaded"} and at == 2
    assert back.station == cfg.station and back.people == cfg.people
    metric = back.device("rg-01").metrics["rain_mm"]  # type: ignore[union-attr]
    assert (metric.name, metric.unit) == ("雨量", "mm")


def test_report_monthly_with_data_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = StationStore(tmp_path / "station.db")
    try:
        stored.save(store.conn, load_config(DEMO), {}, 1)
    finally:
        store.close()
    out = tmp_path / "m.html"
    argv = ["report", "monthly", "--month", "2026-07", "--data", str(tmp_path)]
    assert main([*argv, "--format", "html", "--out", str(out)]) == 0
    assert "清水镇应急管理站" in out.read_text(encoding="utf-8")


def test_a_database_without_a_station_file_asks_for_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    StationStore(tmp_path / "station.db").close()
    argv = ["report", "monthly", "--month", "2026-07", "--data", str(tmp_path), "--format", "html"]
    assert main(argv) != 0
    assert "give -c" in capsys.readouterr().err


def test_no_secret_of_the_station_file_reaches_the_database(tmp_path: Path) -> None:
    """Passwords, signing secrets, tokens and the keys inside robot and webhook URLs stay
    in the station file: a backup or an export of the database must not carry them."""
    text = DEMO.read_text(encoding="utf-8") + (
        '\n[[notify.robots]]\nid = "county"\nname = "县应急群"\nkind = "dingtalk"\n'
        'url = "https://oapi.dingtalk.com/robot/send?access_token=TOKEN-4711"\n'
        'secret = "SEC-0815"\nlevels = ["red"]\n'
    )
    station = tmp_path / "station.toml"
    station.write_text(text, encoding="utf-8")
    for f in DEMO.parent.glob("demo_*"):  # the rules, map layers and outline it names
        (tmp_path / f.name).write_bytes(f.read_bytes())
    cfg = load_config(station)
    assert cfg.notify.robots and cfg.notify.robots[-1].secret == "SEC-0815"
    store = StationStore(tmp_path / "station.db")
    try:
        stored.save(store.conn, cfg, {}, 1)
    finally:
        store.close()
    raw = (tmp_path / "station.db").read_bytes()
    assert "县应急群".encode() in raw  # the stored file is in these bytes (not only the WAL)
    for secret in (b"TOKEN-4711", b"SEC-0815", b"access_token"):
        assert secret not in raw
    found = stored.load(tmp_path / "station.db")
    assert found is not None
    robot = found[0].notify.robots[-1]
    assert (robot.secret, robot.url) == (None, "https://oapi.dingtalk.com/")
