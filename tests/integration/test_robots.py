"""DingTalk, WeCom and Feishu played by local HTTP servers on 127.0.0.1. Each server
checks the signature as the service's documentation describes it — written here from the
documentation, not by calling the gateway's signing code — and answers success,
throttling (the service's own error code) or an error; the gateway's robot channel merges
what waits for the 20-a-minute limit and loses nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.config.loop import Robot
from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.notify.base import Delivery, DeliveryError
from gateway.notify.dashboard import DashboardChannel
from gateway.notify.dispatcher import Dispatcher
from gateway.notify.robots import RobotChannel
from gateway.tickets.desk import Desk
from gateway.tickets.records import read_attempts
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.model import DeviceInfo, ThresholdRule
from tests.unit.tickets.loop_helpers import station

pytestmark = pytest.mark.integration
DING_SECRET = "SEC1a2b3c4d5e6f-demo"
FEISHU_SECRET = "fs-secret-7788"


class Service:
    """One fake service: what it received and whether the signature held."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.got: list[dict[str, Any]] = []
        self.answer: dict[str, Any] | None = None  # None: success
        self.status = 200
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        svc = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                ok = svc.check(u.path, q, body)
                svc.got.append({"path": self.path, "query": q, "body": body, "ok": ok})
                if svc.status != 200:
                    self.send_response(svc.status)
                    self.end_headers()
                    return
                answer = svc.answer or {"errcode": 0, "errmsg": "ok"}
                if not ok:
                    answer = svc.bad_sign()
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return H

    def check(self, path: str, q: dict[str, list[str]], body: dict[str, Any]) -> bool:
        now_ms = int(time.time() * 1000)
        if self.kind == "dingtalk":
            # 加签: timestamp (ms) + "\n" + secret, HmacSHA256 keyed by the secret, Base64,
            # then urlEncode; both as query parameters; at most an hour old
            ts = q["timestamp"][0]
            string_to_sign = ts + "\n" + DING_SECRET
            mac = hmac.new(DING_SECRET.encode("utf-8"), string_to_sign.encode("utf-8"), "sha256")
            expected = base64.b64encode(mac.digest()).decode()
            # parse_qs already URL-decoded the sign parameter once
            return q["sign"][0] == expected and abs(now_ms - int(ts)) < 3_600_000
        if self.kind == "wecom":
            return q.get("key") == ["wecom-key-123"]
        # Feishu 签名校验: timestamp (s) + "\n" + secret is the HmacSHA256 KEY; the
        # message is empty; Base64; both in the body; at most an hour old
        ts = body["timestamp"]
        key = f"{ts}\n{FEISHU_SECRET}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return body["sign"] == expected and abs(now_ms // 1000 - int(ts)) < 3600

    def bad_sign(self) -> dict[str, Any]:
        return {
            "dingtalk": {"errcode": 310000, "errmsg": "sign not match"},
            "wecom": {"errcode": 93000, "errmsg": "invalid webhook url"},
            "feishu": {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"},
        }[self.kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def services() -> Iterator[dict[str, Service]]:
    s = {k: Service(k) for k in ("dingtalk", "wecom", "feishu")}
    yield s
    for v in s.values():
        v.close()


def robots(s: dict[str, Service], ding_secret: str = DING_SECRET) -> list[Robot]:
    return [
        Robot(
            id="ding",
            kind="dingtalk",
            url=f"{s['dingtalk'].url}/robot/send?access_token=tok",
            secret=ding_secret,
        ),
        Robot(
            id="wx",
            name="防汛值班群",
            kind="wecom",
            url=f"{s['wecom'].url}/cgi-bin/webhook/send?key=wecom-key-123",
        ),
        Robot(
            id="fs",
            kind="feishu",
            url=f"{s['feishu'].url}/open-apis/bot/v2/hook/abc",
            secret=FEISHU_SECRET,
        ),
    ]


def delivery(
    i: int, target: str, text: str = "### 清水镇 红色预警\n- 监测点：下溪村后山滑坡"
) -> Delivery:
    body = {"text": f"{text} #{i}", "mentions": ["13800000001", "13800000006"]}
    return Delivery(i, 1, "robot", target, body)


def test_each_service_gets_a_correctly_signed_message(services: dict[str, Service]) -> None:
    async def main() -> None:
        ch = RobotChannel(robots(services))
        await ch.start()
        try:
            await asyncio.gather(*(ch.send(delivery(1, r)) for r in ("ding", "wx", "fs")))
        finally:
            await ch.stop()

    asyncio.run(main())
    [d] = services["dingtalk"].got
    assert d["ok"] and d["path"].startswith("/robot/send?access_token=tok&timestamp=")
    assert d["body"]["msgtype"] == "markdown"
    assert d["body"]["at"] == {"atMobiles": ["13800000001", "13800000006"], "isAtAll": False}
    assert "@13800000001" in d["body"]["markdown"]["text"]
    [w] = services["wecom"].got
    assert w["ok"] and w["body"]["msgtype"] == "text"
    assert w["body"]["text"]["mentioned_mobile_list"] == ["13800000001", "13800000006"]
    assert w["body"]["text"]["content"].startswith("清水镇 红色预警")
    [f] = services["feishu"].got
    assert f["ok"] and f["body"]["msg_type"] == "text"
    assert set(f["body"]) == {"timestamp", "sign", "msg_type", "content"}


def test_a_wrong_secret_is_an_error_in_words(services: dict[str, Service]) -> None:
    async def main() -> str:
        ch = RobotChannel(robots(services, ding_secret="SECwrong"))
        await ch.start()
        try:
            with pytest.raises(DeliveryError) as e:
                await ch.send(delivery(1, "ding"))
            st = ch.status()["robots"]["ding"]  # type: ignore[index]
            assert st["last_error"] == str(e.value)
            return str(e.value)
        finally:
            await ch.stop()

    err = asyncio.run(main())
    assert services["dingtalk"].got[0]["ok"] is False
    assert (
        err == "dingtalk 错误 310000 签名不匹配或关键词/IP 不符（secret 错误？） (sign not match)"
    )


def test_throttling_and_http_errors_fail_the_attempt(services: dict[str, Service]) -> None:
    services["wecom"].answer = {"errcode": 45009, "errmsg": "api freq out of limit"}
    services["feishu"].status = 503

    registry = CollectorRegistry()

    async def main() -> None:
        hub = Hub()
        ch = RobotChannel(robots(services), registry=registry)
        d = Dispatcher(desk=None, writer=None, channels={"robot": ch}, hub=hub)  # type: ignore[arg-type]
        await ch.start()
        try:
            with pytest.raises(DeliveryError, match="45009 发送太快") as e:
                await ch.send(delivery(1, "wx"))
            assert e.value.outcome == "throttled"
            assert ch.status()["robots"]["wx"]["throttled"] is True  # type: ignore[index]
            with pytest.raises(DeliveryError, match="HTTP 503"):
                await ch.send(delivery(2, "fs"))
            # the DingTalk robot still works: one robot's trouble is its own
            await ch.send(delivery(3, "ding"))
            # the page reads this through /api/deliveries
            st = d.status()["robot"]["robots"]  # type: ignore[index]
            assert st["wx"] == {
                "name": "防汛值班群",
                "kind": "wecom",
                "queued": 0,
                "throttled": True,
                "last_error": "wecom 错误 45009 发送太快（每分钟 20 条） (api freq out of limit)",
            }
            assert st["fs"]["last_error"] == "HTTP 503" and st["ding"]["last_error"] is None
        finally:
            await ch.stop()

    asyncio.run(main())
    assert len(services["dingtalk"].got) == 1
    metrics = generate_latest(registry).decode()
    assert 'stationgw_robot_throttled{robot="wx"} 1.0' in metrics
    assert 'stationgw_robot_failing{robot="fs"} 1.0' in metrics
    assert 'stationgw_robot_messages_total{result="sent",robot="ding"} 1.0' in metrics


def test_a_storm_is_merged_under_the_limit_and_nothing_is_lost(
    services: dict[str, Service],
) -> None:
    async def main() -> None:
        # a 2-second window keeps the test short; the rule is the same as 20 a minute
        ch = RobotChannel(robots(services)[:1], window_s=2.0)
        await ch.start()
        try:
            sends = []
            for i in range(1, 61):  # a storm: a warning every 20 ms
                sends.append(asyncio.create_task(ch.send(delivery(i, "ding"))))
                await asyncio.sleep(0.02)
            await asyncio.gather(*sends)
        finally:
            await ch.stop()

    asyncio.run(main())
    got = services["dingtalk"].got
    texts = "\n".join(g["body"]["markdown"]["text"] for g in got)
    assert all(f"#{i}\n" in texts + "\n" or f"#{i} " in texts for i in range(1, 61))
    # 20 in the first window, one by one; the 40 that waited, merged into one after it
    assert len(got) == 21
    assert got[-1]["body"]["markdown"]["text"].startswith("【40 条预警合并发送】")
    assert all(g["ok"] for g in got)
    times = sorted(int(g["query"]["timestamp"][0]) for g in got)
    assert all(b - a >= 1990 for a, b in zip(times, times[20:], strict=False))


def test_a_station_file_with_robots_sends_signed_warnings_by_scope(
    services: dict[str, Service], tmp_path: Path
) -> None:
    """Through the desk and the dispatcher: a warning's wave goes to the robots of its
    level and village, mentioning the people called; out-of-scope robots get nothing."""
    cfg = station(
        tmp_path,
        notify={
            "mqtt": {"enabled": False},
            "robots": [
                {
                    "id": "ding",
                    "name": "下溪村防汛群",
                    "kind": "dingtalk",
                    "url": f"{services['dingtalk'].url}/robot/send?access_token=tok",
                    "secret": DING_SECRET,
                    "villages": ["xiaxi"],
                },
                {
                    "id": "fs",
                    "kind": "feishu",
                    "url": f"{services['feishu'].url}/open-apis/bot/v2/hook/abc",
                    "secret": FEISHU_SECRET,
                    "levels": ["red"],  # not for blue
                },
            ],
        },
    )
    writer = ThreadPoolExecutor(1)
    store: StationStore = writer.submit(StationStore, cfg.database.path).result()
    desk = Desk(store, cfg)
    rain = ThresholdRule("rain", "短时强降雨", "rain_mm", "above", ((Level.BLUE, 2.0),))
    ing = writer.submit(
        Ingestor, store, RuleSet([rain], {"rg-01": DeviceInfo("rg-01", "slope")}), desk
    ).result()
    t0 = int(time.time() * 1000)

    async def main() -> None:
        hub = Hub()
        d = Dispatcher(desk, writer, {"dashboard": DashboardChannel(hub)}, hub)
        d.add_channels({"robot": RobotChannel(cfg.notify.robots)}, None)
        await d.start()
        try:
            r = Reading("rg-01", "rain_mm", t0, 3.0)
            writer.submit(ing.commit, Batch(readings=[r]), t0).result()
            deadline = time.monotonic() + 20
            while not services["dingtalk"].got:
                assert time.monotonic() < deadline, "no robot message"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        finally:
            await d.stop()

    asyncio.run(main())
    [g] = services["dingtalk"].got
    assert g["ok"] and g["body"]["at"]["atMobiles"] == ["13800000001"]
    text = g["body"]["markdown"]["text"]
    assert text.startswith("### 清水镇 蓝色预警\n- 监测点：下溪村后山滑坡")
    assert "- 责任人：李网格" in text and "回复短信0002或接听电话按1确认" in text
    assert services["feishu"].got == []
    [w] = [t for t in writer.submit(store.tickets).result() if t.kind == "warning"]
    att = writer.submit(read_attempts, store, w.id).result()
    assert [(a.channel, a.target, a.outcome) for a in att if a.channel == "robot"] == [
        ("robot", "ding", "sent")
    ]
    writer.submit(store.close).result()
    writer.shutdown()


def test_a_robot_that_never_answers_times_out_and_delays_no_other(
    services: dict[str, Service],
) -> None:
    hole = socket.socket()  # accepts connections (backlog) and never answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    dead = Robot(
        id="dead",
        kind="wecom",
        url=f"http://127.0.0.1:{hole.getsockname()[1]}/cgi-bin/webhook/send?key=k",
        timeout_s=2.0,
    )

    async def main() -> None:
        ch = RobotChannel([dead, *robots(services)[:1]])
        await ch.start()
        try:
            stuck = asyncio.create_task(ch.send(delivery(1, "dead")))
            await asyncio.sleep(0.2)  # the dead robot's request is on its way
            await ch.send(delivery(2, "ding"))  # goes through meanwhile
            assert not stuck.done()
            with pytest.raises(DeliveryError, match="wecom unreachable: timed out"):
                await stuck
        finally:
            await ch.stop()

    try:
        asyncio.run(main())
    finally:
        hole.close()
    assert len(services["dingtalk"].got) == 1
