"""The rules engine inside the running gateway, with real Mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REPO, RULES, STATION, Gateway, Mosquitto, add_user, free_port
from tests.integration.test_end_to_end import publish_raw, wait_for

pytestmark = pytest.mark.integration

MIN = 60_000
FLASH_FLOOD = (REPO / "rules" / "examples" / "flash_flood.toml").read_text(encoding="utf-8")


@pytest.fixture
def live(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Gateway]:
    """A gateway whose rules are a folder, and whose rg-02 has plausibility settings."""
    text = STATION.format(broker_port=mosquitto.port, http_port=free_port())
    text = text.replace('path = "rules.toml"', 'path = "rules"')
    text = text.replace(
        'metrics.rain_mm = {{ unit = "mm", min = 0, max = 50 }}\nmetrics.battery_v = {{ unit = "V", min = 0, max = 15 }}\n\n[broker]'.replace(
            "{{", "{"
        ).replace("}}", "}"),
        'metrics.rain_mm = { unit = "mm", min = 0, max = 50, stuck_after = "30m" }\n'
        'metrics.battery_v = { unit = "V", min = 0, max = 15 }\n\n[broker]',
    )
    assert 'stuck_after = "30m"' in text
    (tmp_path / "station.toml").write_text(text, encoding="utf-8")
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "burst.toml").write_text(RULES, encoding="utf-8")
    (folder / "flash_flood.toml").write_text(
        FLASH_FLOOD.replace('keep_for = "30m"', 'keep_for = "0s"'), encoding="utf-8"
    )
    port = int(text.split("[http]\nport = ")[1].split()[0])
    gw = Gateway(
        tmp_path / "station.toml", tmp_path / "data" / "station.db", port, tmp_path / "gw.log"
    )
    try:
        yield gw
    finally:
        gw.stop()


def send(port: int, device: str, start: int, values: list[float], step: int = 10 * MIN) -> None:
    payloads = [
        json.dumps({"ts": start + i * step, "values": {"rain_mm": v}}).encode()
        for i, v in enumerate(values)
    ]
    publish_raw(port, f"stations/test/{device}/telemetry", payloads)


def tickets(gw: Gateway) -> list[dict[str, object]]:
    return list(gw.get("/api/tickets"))


def test_a_scripted_storm_opens_tickets_at_the_expected_times_and_levels(
    live: Gateway, mosquitto: Mosquitto
) -> None:
    live.start()
    start = (int(time.time() * 1000) // MIN - 180) * MIN
    send(mosquitto.port, "rg-01", start, [0, 1, 1, 1, 1, 12, 12, 12, 12])
    flood = wait_for(
        lambda: [t for t in tickets(live) if t["rule"] == "flash-flood" and t["level"] == "yellow"],
        what="flash-flood ticket raised to yellow",
    )[0]
    burst = [t for t in tickets(live) if t["rule"] == "rain-burst"]
    assert [t["level"] for t in burst] == ["red"]  # 12 mm in one report
    detail = live.get(f"/api/tickets/{flood['id']}")
    got = [(e["kind"], e["level"], (e["ts"] - start) // MIN) for e in detail["events"]]
    # the hour ending at 60 min holds 1+1+1+1+12+12 = 28; at 70 min 1+1+1+12*3 = 39
    # (blue ≥ 35); at 80 min 1+1+12*4 = 50 (yellow ≥ 45)
    assert got == [("opened", "blue", 70), ("raised", "yellow", 80)]
    assert detail["reason"].startswith("1小时累计rain_mm 50 mm ≥ 黄色阈值 45 mm")


def test_faulty_gauges_open_device_fault_tickets_never_hazards(
    live: Gateway, mosquitto: Mosquitto
) -> None:
    live.start()
    start = (int(time.time() * 1000) // MIN - 120) * MIN
    send(mosquitto.port, "rg-02", start, [0.5] * 5)  # the same value for 40 minutes
    send(mosquitto.port, "rg-02", start + 50 * MIN, [400.0])  # 400 mm in one report
    found = wait_for(
        lambda: (
            sorted(t["rule"] for t in tickets(live) if t["kind"] == "device_fault")
            == ["fault:range", "fault:stuck"]
        ),
        what="two device-fault tickets",
    )
    assert found
    assert [t for t in tickets(live) if t["kind"] == "hazard"] == []
    flags = live.get(
        "/api/readings",
        {"device": "rg-02", "metric": "rain_mm", "from": start, "to": start + 60 * MIN},
    )["points"]
    assert [p["flags"] for p in flags] == [0, 0, 0, 2, 2, 1]  # stuck from 30 min on


def test_a_bad_rule_file_is_rejected_and_the_running_rules_keep_working(
    live: Gateway, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    live.start()
    folder = tmp_path / "rules"
    (folder / "bad.toml").write_text(
        '[[rules]]\nid = "bad"\nkind = "threshold"\n', encoding="utf-8"
    )
    (folder / "burst.toml").write_text("this is not toml [", encoding="utf-8")
    status = wait_for(
        lambda: (s := live.get("/api/rules"))["errors"] and len(s["errors"]) == 2 and s,
        what="both files rejected",
    )
    assert any("name: Field required" in p for p in status["errors"][str(folder / "bad.toml")])
    assert sorted(r["id"] for r in status["rules"]) == ["flash-flood", "rain-burst"]

    now = int(time.time() * 1000)
    send(mosquitto.port, "rg-01", now, [9.0])  # the kept rain-burst rule still judges
    wait_for(lambda: [t for t in tickets(live) if t["rule"] == "rain-burst"], what="ticket")

    password = add_user(live.db, "tech", "technician")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "rules",
            "reload",
            "-c",
            str(live.config),
            "--user",
            "tech",
            "--password-stdin",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2 and "bad.toml" in out.stderr

    (folder / "bad.toml").unlink()
    (folder / "burst.toml").write_text(RULES.replace("blue = 2.0", "blue = 1.0"), encoding="utf-8")
    assert live.proc is not None
    live.proc.send_signal(signal.SIGHUP)
    # the loader's errors clear before the writer thread has swapped the rules in: wait
    # for both
    status = wait_for(
        lambda: (
            not (s := live.get("/api/rules"))["errors"]
            and any(r.get("levels", {}).get("blue") == 1.0 for r in s["rules"])
            and s
        ),
        what="errors gone and the new rule running after SIGHUP",
    )
    burst = next(r for r in status["rules"] if r["id"] == "rain-burst")
    assert burst["levels"]["blue"] == 1.0
    # the log line follows the swap: wait for it too
    wait_for(
        lambda: (
            "rules reloaded (SIGHUP)" in (text := live.log.read_text())
            or "rules reloaded (file changed)" in text
        ),
        what="the reload logged",
    )


def test_a_technician_saves_a_rule_file_from_the_page_only_when_it_is_valid(
    live: Gateway, tmp_path: Path
) -> None:
    live.start()
    folder = tmp_path / "rules"
    with closing(live.api("technician")) as tech, closing(live.api("duty_officer")) as duty:
        files = {f["name"]: f["text"] for f in tech.get("/api/rules/files").json()["files"]}
        assert sorted(files) == ["burst.toml", "flash_flood.toml"]
        assert duty.get("/api/rules/files").status_code == 403
        bad = '[[rules]]\nid = "x"\nkind = "threshold"\nmetric = "rain_mm"\n'
        checked = tech.post("/api/rules/check", json={"text": bad}).json()
        assert not checked["ok"] and any("name: Field required" in e for e in checked["errors"])
        r = tech.put("/api/rules/files/extra.toml", json={"text": bad})
        assert r.status_code == 422 and not (folder / "extra.toml").exists()
        assert tech.put("/api/rules/files/../x.toml", json={"text": bad}).status_code in (404, 422)
        good = files["burst.toml"].replace("blue = 2.0", "blue = 1.5")
        saved = tech.put("/api/rules/files/burst.toml", json={"text": good})
        assert saved.status_code == 200, saved.text
        burst = next(r for r in saved.json()["rules"] if r["id"] == "rain-burst")
        assert burst["levels"]["blue"] == 1.5
        assert (folder / "burst.toml").read_text(encoding="utf-8") == good
        with closing(live.api("admin")) as admin:
            audit = admin.get("/api/audit").json()
        assert [
            (a["action"], a["target"], a["ok"]) for a in audit if a["action"] == "rules.save"
        ] == [
            ("rules.save", "burst.toml", True),
            ("rules.save", "extra.toml", False),
        ]
