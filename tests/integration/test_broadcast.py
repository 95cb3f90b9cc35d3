"""Village broadcast (村村响): a local HTTP server on 127.0.0.1 plays the broadcast
controller; the warning reaches it as the station file's JSON template says, with the
level's audio clip, once per round, audited as a ticket event and an attempt; the sirens
a broadcaster names are sounded in the same round."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.notify.base import DeliveryError
from gateway.notify.broadcast import BroadcastChannel, fill
from gateway.notify.dashboard import DashboardChannel
from gateway.notify.dispatcher import Dispatcher
from gateway.tickets.desk import Desk
from gateway.tickets.records import read_attempts, read_deliveries
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.model import DeviceInfo, ThresholdRule
from tests.integration.test_sms import until
from tests.unit.tickets.loop_helpers import station

pytestmark = pytest.mark.integration
RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((Level.BLUE, 2.0), (Level.RED, 12.0))
)


class Controller:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any], str | None]] = []
        got = self.got

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.path, json.loads(raw), self.headers.get("X-Token")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/play"


def test_the_template_escapes_values_and_refuses_what_is_not_json() -> None:
    body = fill('{"msg": "{text}", "zone": "{village}"}', {"text": '说"快跑"\n', "village": "x"})
    assert json.loads(body) == {"msg": '说"快跑"\n', "zone": "x"}
    with pytest.raises(DeliveryError, match="not JSON"):
        fill('{"msg": {text}}', {"text": "红色预警"})


def test_a_red_warning_is_broadcast_in_its_village_once_per_round(tmp_path: Path) -> None:
    ctl = Controller()
    cfg = station(
        tmp_path,
        notify={
            "mqtt": {"enabled": False},
            "sirens": [{"device": "siren-1", "points": ["slope"], "levels": ["red"]}],
            "broadcasts": [
                {
                    "id": "xiaxi-gb",
                    "villages": ["xiaxi"],
                    "levels": ["red"],
                    "url": ctl.url,
                    "body": '{"zone": "{village}", "tts": "{text}", "clip": "{clip}", "n": 3}',
                    "headers": {"X-Token": "t0k"},
                    "clips": {"red": "red-evacuate.mp3"},
                    "sirens": ["siren-1"],
                }
            ],
        },
    )
    writer = ThreadPoolExecutor(1)
    store: StationStore = writer.submit(StationStore, cfg.database.path).result()
    desk = Desk(store, cfg)
    ing = writer.submit(
        Ingestor, store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), desk
    ).result()
    t0 = int(time.time() * 1000)

    async def main() -> None:
        hub = Hub()
        d = Dispatcher(desk, writer, {"dashboard": DashboardChannel(hub)}, hub)
        assert cfg.notify.broadcasts
        d.add_channels({"broadcast": BroadcastChannel(cfg.notify.broadcasts)}, None)
        await d.start()
        try:
            for i, v in enumerate((3.0, 13.0, 13.5)):  # blue, red, red again
                now = t0 + i * 1000
                r = Reading("rg-01", "rain_mm", now, v)
                writer.submit(ing.commit, Batch(readings=[r]), now).result()
            await until(lambda: len(ctl.got) == 1, "the broadcast")
            await asyncio.sleep(1.0)  # and no second one
        finally:
            await d.stop()

    asyncio.run(main())
    [(path, body, token)] = ctl.got
    assert (path, token) == ("/api/play", "t0k")
    assert body["zone"] == "xiaxi" and body["clip"] == "red-evacuate.mp3" and body["n"] == 3
    assert body["tts"] == "各位村民请注意：下溪村后山滑坡发布红色预警，立即组织危险区人员转移撤离。"
    [w] = [t for t in writer.submit(store.tickets).result() if t.kind == "warning"]
    evs = writer.submit(store.events, w.id).result()
    assert [(e.kind, e.note) for e in evs if e.kind == "broadcast"] == [
        ("broadcast", "xiaxi-gb xiaxi")
    ]
    att = [
        (a.channel, a.target, a.outcome) for a in writer.submit(read_attempts, store, w.id).result()
    ]
    assert ("broadcast", "xiaxi-gb", "sent") in att
    rows = writer.submit(read_deliveries, store, ticket_id=w.id).result()
    sirens = [x.target for x in rows if x.channel == "siren"]
    assert sirens == ["siren-1"]  # once, although both the siren and the broadcaster name it
    ctl.server.shutdown()
    ctl.server.server_close()
    writer.submit(store.close).result()
    writer.shutdown()
