"""The warning loop against real Mosquitto and a real gateway process: a reading issues a
warning; the point's responder gets an MQTT alert; nobody answers, the village is called
(督导); an acknowledgement over MQTT stops it; a siren confirms, a mute siren is retried
and reported failed; a webhook that fails once is retried; the hazard goes through its
lifecycle by role over the API; the warning is lifted; summary, ledger and handover."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openpyxl
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs.siren import SirenStub
from tests.conftest import REPO, Gateway, Mosquitto, free_port
from tests.integration.test_end_to_end import SSE, publish_raw, wait_for

pytestmark = pytest.mark.integration

LOOP = """
[[people]]
id = "li"
name = "李网格"
phone = "13800000001"
roles = ["grid_member"]
grid = "point:p1"

[[people]]
id = "cun"
name = "张村长"
phone = "13800000002"
roles = ["leader"]
grid = "village:v1"

[[people]]
id = "wang"
name = "王镇长"
roles = ["leader"]
grid = "township"

[[people]]
id = "chen"
name = "陈书记"
roles = ["leader"]

[[people]]
id = "zhao"
name = "赵值班"
roles = ["duty_officer"]

[[duty]]
officer = "zhao"
start = "00:00"
end = "00:00"

[tickets]
ack_deadline = {{ yellow = "4s" }}

[notify]
max_attempts = 3
webhook = {{ url = "http://127.0.0.1:{hook_port}/hook", timeout_s = 2 }}

[[notify.sirens]]
device = "siren-1"
points = ["p1"]
levels = ["yellow", "orange", "red"]
confirm_s = 2

[[notify.sirens]]
device = "siren-2"
points = ["p1"]
levels = ["yellow"]
confirm_s = 0.3
"""


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    calls = 0

    def do_POST(self) -> None:
        Hook.calls += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.calls == 1:
            self.send_response(500)  # the first attempt fails: retried with backoff
        else:
            Hook.received.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_a: object) -> None:
        return None


def subscriber(port: int, topic: str) -> tuple[mqtt.Client, queue.Queue[dict[str, Any]]]:
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="handheld")
    c.on_connect = lambda cl, *_a: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *_a: ready.set()
    c.on_message = lambda _c, _u, m: got.put(json.loads(m.payload))
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(10)
    return c, got


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )


def test_warning_loop(gateway: Gateway, mosquitto: Mosquitto, tmp_path: Path) -> None:
    hook_port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", hook_port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway.config.write_text(gateway.config.read_text() + LOOP.format(hook_port=hook_port))
    siren1 = SirenStub("127.0.0.1", mosquitto.port, "test", "siren-1")
    siren2 = SirenStub("127.0.0.1", mosquitto.port, "test", "siren-2", confirm=False)
    assert siren1.subscribed.wait(10) and siren2.subscribed.wait(10)
    handheld, alerts = subscriber(mosquitto.port, "stations/test/alerts")
    try:
        gateway.start()
        url = gateway.url
        http = gateway.api("viewer")
        sse = SSE(f"{url}/api/events", http)
        now = int(time.time() * 1000)
        publish_raw(
            mosquitto.port,
            "stations/test/rg-01/telemetry",
            [json.dumps({"ts": now, "values": {"rain_mm": 6.0}}).encode()],
        )

        # the warning for the point, and an MQTT alert to its responder
        alert = alerts.get(timeout=15)
        assert (alert["kind"], alert["level"], alert["person"], alert["point"]) == (
            "warning",
            "yellow",
            "li",
            "p1",
        )
        wid, code = alert["ticket"], alert["code"]
        assert code == f"{wid:04d}" and "请回复" in alert["text"]
        channels = http.get(f"{url}/api/health").json()["channels"]
        assert channels["mqtt"]["connected"] is True  # the alert link, shown to the duty room
        assert "connected" not in channels["dashboard"]
        alarm = sse.next("alarm")
        assert alarm["ticket"] == wid and alarm["level"] == "yellow"

        # nobody answers within 4 s: the village and the duty officer are called (督导)
        escalated = [alerts.get(timeout=15) for _ in range(2)]
        assert sorted(a["person"] for a in escalated) == ["cun", "zhao"]
        # the village chief answers from the handheld over MQTT
        publish_raw(
            mosquitto.port,
            "stations/test/acks",
            [json.dumps({"code": code, "by": "cun", "note": "已组织转移"}).encode()],
        )
        w = wait_for(
            lambda: (t := http.get(f"/api/tickets/{wid}").json())["acknowledged_by"] and t,
            what="acknowledged over MQTT",
        )
        assert w["acknowledged_by"] == "张村长"
        calls = [(c["person"], c["why"], c["outcome"]) for c in w["calls"]]
        assert calls[:3] == [
            ("li", "issued", "escalated"),
            ("cun", "escalated", "acknowledged"),
            ("zhao", "duty", "answered"),
        ]
        assert len(calls) == 3  # acknowledged: no further escalation

        # sirens: one confirms; the mute one is retried and reported failed
        def deliveries(**params: Any) -> list[dict[str, Any]]:
            return http.get("/api/deliveries", params=params).json()["deliveries"]  # type: ignore[no-any-return]

        failed = wait_for(
            lambda: [d for d in deliveries(status="failed") if d["channel"] == "siren"],
            what="siren failed",
            timeout=30,
        )
        assert [(d["target"], d["attempts"]) for d in failed] == [("siren-2", 3)]
        assert "no confirmation" in failed[0]["last_error"]
        ok = [
            d
            for d in deliveries(ticket=wid)
            if d["channel"] == "siren" and d["target"] == "siren-1"
        ]
        assert [(d["status"], d["attempts"]) for d in ok] == [("sent", 1)]
        assert siren1.commands[0]["action"] == "sound" and len(siren2.commands) == 3
        # the webhook failed once, then delivered
        hooks = wait_for(
            lambda: (
                [
                    d
                    for d in deliveries(ticket=wid)
                    if d["channel"] == "webhook" and d["status"] == "sent"
                ]
                or None
            ),
            what="webhook",
            timeout=30,
        )
        assert hooks and Hook.received[0]["ticket"] == wid
        assert any(d["attempts"] == 2 for d in hooks)

        # the hazard ticket through its lifecycle by role
        [hazard] = [t for t in http.get("/api/tickets").json() if t["kind"] == "hazard"]
        hid = hazard["id"]
        # who acts is the logged-in user: their people-file id and their role
        users = {
            "zhao": gateway.api("duty_officer", "zhao", person="zhao"),
            "wang": gateway.api("leader", "wang", person="wang"),
            "chen": gateway.api("leader", "chen", person="chen"),
            "li": gateway.api("leader", "li", person="li"),  # a grid member, not a leader
            "stranger": gateway.api("leader", "stranger"),  # no one in the people file
            "viewer": http,
        }

        def step(who: str, body: dict[str, Any]) -> httpx.Response:
            return users[who].post(f"/api/tickets/{hid}/steps", json=body)

        refused = step("viewer", {"step": "confirm"})
        assert refused.status_code == 403 and refused.json()["detail"]["why"] == "role"
        stranger = step("stranger", {"step": "confirm"})
        assert stranger.status_code == 403 and "not in the people file" in stranger.text
        assert step("li", {"step": "confirm"}).status_code == 403  # not his role
        assert step("zhao", {"step": "control"}).status_code == 409  # not confirmed yet
        assert step("zhao", {"step": "confirm"}).json()["state"] == "confirmed"
        r = step("zhao", {"step": "control", "note": "拉警戒线", "attachments": ["photo:1.jpg"]})
        assert r.json()["state"] == "controlled"
        r = step("wang", {"step": "rectify", "note": "疏通排水"})
        assert r.json()["state"] == "rectified"
        same = step("wang", {"step": "close"})
        assert same.status_code == 409 and same.json()["detail"]["why"] == "same_person"
        assert step("chen", {"step": "close", "note": "复核通过"}).json()["state"] == "closed"
        events = http.get(f"/api/tickets/{hid}").json()["events"]
        steps = [
            (e["actor"], e["role"], e["note"], e["attachments"])
            for e in events
            if e["kind"] == "step"
        ]
        assert steps == [
            ("赵值班", "duty_officer", "confirm", []),
            ("赵值班", "duty_officer", "control: 拉警戒线", ["photo:1.jpg"]),
            ("王镇长", "leader", "rectify: 疏通排水", []),
            ("陈书记", "leader", "close: 复核通过", []),
        ]

        # handover lists what is open: the warning
        ho = users["zhao"].post("/api/handovers", json={"to": "钱值班", "note": "雨还在下"})
        assert ho.status_code == 201 and [i["id"] for i in ho.json()["open"]] == [wid]
        assert (ho.json()["from"], http.get("/api/handovers").json()[0]["to"]) == (
            "赵值班",
            "钱值班",
        )

        # a hazard reported from a handheld: its own ticket; dismissing needs a reason
        rep = users["zhao"].post(
            "/api/tickets",
            json={
                "title": "路边落石",
                "point": "p1",
                "level": "blue",
                "note": "巡查发现",
                "attachments": ["photo:rock.jpg"],
            },
        )
        assert rep.status_code == 201 and (rep.json()["kind"], rep.json()["state"]) == (
            "hazard",
            "discovered",
        )
        rid = rep.json()["id"]
        dismiss = {"step": "dismiss"}
        assert users["chen"].post(f"/api/tickets/{rid}/steps", json=dismiss).status_code == 422
        dismiss["note"] = "误报：已清理"
        r = users["chen"].post(f"/api/tickets/{rid}/steps", json=dismiss)
        assert r.json()["state"] == "dismissed"

        # lifting needs a reason; then the warning is over
        lift = f"/api/tickets/{wid}/lift"
        assert users["wang"].post(lift, json={"reason": ""}).status_code == 422
        lifted = users["wang"].post(lift, json={"reason": "降雨停止，巡查无异常"})
        assert lifted.status_code == 200 and lifted.json()["state"] == "lifted"

        summary = http.get(f"/api/tickets/{wid}/summary").json()
        assert summary["escalated_past"] == ["李网格"]
        assert summary["outcome"] == "lifted by 王镇长: 降雨停止，巡查无异常"
        out = cli("tickets", "summary", str(wid), "--db", str(gateway.db)).stdout
        assert "escalated past: 李网格" in out and "张村长" in out

        xlsx = tmp_path / "ledger.xlsx"
        cli("tickets", "export", "--db", str(gateway.db), "--format", "xlsx", "--out", str(xlsx))
        ws = openpyxl.load_workbook(xlsx).active
        rows = list(ws.iter_rows(min_row=3, values_only=True))
        assert [(r[2], r[19]) for r in rows] == [
            ("隐患", "已核销"),
            ("预警", "已解除"),
            ("隐患", "已撤销（误报）"),
        ]
        api_csv = http.get("/api/ledger", params={"format": "csv"}).content.decode("utf-8-sig")
        assert api_csv.splitlines()[0].startswith("序号,编号,类别,隐患名称")
        api_xlsx = http.get("/api/ledger", params={"format": "xlsx"}).content
        assert openpyxl.load_workbook(io.BytesIO(api_xlsx)).active["A1"].value == "隐患台账"
        metrics = httpx.get(f"{url}/metrics").text
        assert 'stationgw_delivery_attempts_total{channel="siren",result="failed"} 1.0' in metrics
        assert 'stationgw_delivery_attempts_total{channel="webhook",result="retry"} 1.0' in metrics
        people = http.get("/api/people").json()
        assert people["on_duty"]["person"] == "zhao"
        audit = users["chen"].get("/api/audit").json()
        assert {"ticket.step", "ticket.lift", "handover", "login"} <= {a["action"] for a in audit}
        closing = next(a for a in audit if a["action"] == "ticket.step" and a["user"] == "chen")
        assert closing["ok"] and closing["target"] == str(rid)
        assert http.get("/api/audit").status_code == 403  # a viewer
        sse.close()
        for c in users.values():
            c.close()
    finally:
        handheld.disconnect()
        handheld.loop_stop()
        siren1.stop()
        siren2.stop()
        server.shutdown()
        server.server_close()
