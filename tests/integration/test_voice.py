"""Voice calls through the GSM modem stub on a real pseudo-terminal: the stub rings,
answers or not, speaks the warning back as it heard it (UCS2 TTS) and presses keys; a key
press of 1 acknowledges the warning for that person exactly like an SMS reply; busy, no
answer and answered-without-1 are redialled by the policy and every attempt is stored."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from firmware_stubs.gsm_modem import GsmModemStub
from gateway.config.loop import VoiceSection
from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.notify.base import DeliveryError
from gateway.notify.dashboard import DashboardChannel
from gateway.notify.dispatcher import Dispatcher
from gateway.notify.sms import Modem, SmsChannel
from gateway.notify.voice import VoiceChannel, call
from gateway.tickets.desk import Desk
from gateway.tickets.records import read_attempts, read_calls
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.model import DeviceInfo, ThresholdRule
from tests.integration.test_sms import until
from tests.unit.tickets.loop_helpers import station

pytestmark = pytest.mark.integration
RAIN = ThresholdRule("rain", "短时强降雨", "rain_mm", "above", ((Level.RED, 2.0),))
QUICK = VoiceSection(ring_s=2, repeat=2, key_wait_s=1, speech_s=2)


@pytest.mark.parametrize("model", ["quectel", "simcom"])
@pytest.mark.parametrize(
    ("scenario", "outcome", "detail"),
    [
        ("confirm", "confirmed", "key 1"),
        ("key:2", "answered", "key 2"),
        ("answer", "answered", "no key"),
        ("hangup", "answered", "hung up without a key"),
        ("busy", "busy", ""),
        ("no_answer", "no_answer", ""),
    ],
)
def test_the_far_end_answers_ignores_rejects_and_confirms(
    model: str, scenario: str, outcome: str, detail: str
) -> None:
    stub = GsmModemStub.open(model=model)
    try:
        stub.scenarios["13800000001"] = [scenario]
        m = Modem(Path(stub.port), timeout_s=2.0)
        r = call(m, model, "13800000001", "李网格您好，后山滑坡红色预警。收到请按1确认", QUICK)
        assert (r.outcome, r.detail) == (outcome, detail)
        [c] = stub.calls
        assert c["phone"] == "13800000001"
        tts = "AT+QTTS=1," if model == "quectel" else "AT+CTTS=1,"
        if outcome in ("busy", "no_answer"):
            assert c["spoken"] == [] and not any(x.startswith(tts) for x in stub.commands)
        else:
            spoken = c["spoken"]
            assert isinstance(spoken, list) and spoken[0].endswith("收到请按1确认")
            # the other make's commands are never sent
            other = "AT+CTTS" if model == "quectel" else "AT+QTTS"
            assert not any(x.startswith(other) for x in stub.commands)
        assert stub.commands[-1] == "ATH"  # always hung up
        m.close()
    finally:
        stub.close()


def test_a_key_press_acknowledges_after_a_redial_and_sms_shares_the_modem(
    tmp_path: Path,
) -> None:
    stub = GsmModemStub.open(model="quectel")
    stub.scenarios["13800000001"] = ["busy", "confirm"]  # 李网格: busy, then presses 1
    cfg = station(
        tmp_path,
        notify={
            "mqtt": {"enabled": False},
            "sms": {"port": stub.port, "poll_s": 60, "timeout_s": 3, "modem": "quectel"},
            "voice": {"ring_s": 2, "repeat": 1, "key_wait_s": 1, "speech_s": 2},
        },
        tickets={
            "calling": {
                "red": {
                    "voice_after": "0s",
                    "redials": 2,
                    "redial_every": "1s",
                    "not_reached_after": "10m",
                    "channels": ["sms"],
                    "duty_at_once": True,
                }
            }
        },
    )
    writer = ThreadPoolExecutor(1)
    store: StationStore = writer.submit(StationStore, cfg.database.path).result()
    desk = Desk(store, cfg)
    ing = writer.submit(
        Ingestor, store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), desk
    ).result()
    t0 = int(time.time() * 1000)

    registry = CollectorRegistry()

    async def main() -> None:
        hub = Hub()
        d = Dispatcher(desk, writer, {"dashboard": DashboardChannel(hub)}, hub, registry=registry)
        assert cfg.notify.sms is not None and cfg.notify.voice is not None
        sms = SmsChannel(cfg.notify.sms, d.on_ack)
        voice = VoiceChannel(sms, cfg.notify.voice, d.on_ack, lambda i: i in desk.stopped)
        d.add_channels({"sms": sms, "voice": voice}, None)
        await d.start()
        try:
            writer.submit(
                ing.commit, Batch(readings=[Reading("rg-01", "rain_mm", t0, 3.0)]), t0
            ).result()
            [w] = [t for t in writer.submit(store.tickets).result() if t.kind == "warning"]

            def acked() -> bool:
                tk = writer.submit(store.ticket, w.id).result()
                return tk is not None and tk.acknowledged_by == "李网格"

            await until(acked, "the key press to acknowledge", 30)
            calls = writer.submit(read_calls, store, w.id).result()
            li = [c for c in calls if c.person == "li"]
            assert [(c.outcome, c.acked_via) for c in li] == [("acknowledged", "voice")]
            # red calls the duty officer at once; his calls are not needed any more
            zhao = [c for c in calls if c.person == "zhao"]
            assert [c.outcome for c in zhao] == ["answered"]
            attempts = writer.submit(read_attempts, store, w.id).result()
            mine = [(a.channel, a.outcome) for a in attempts if a.person == "li"]
            assert mine == [("sms", "sent"), ("voice", "busy"), ("voice", "confirmed")]
            assert [c["scenario"] for c in stub.calls if c["phone"] == "13800000001"] == [
                "busy",
                "confirm",
            ]
            sent_to = [p for p, _ in stub.sent]
            assert sent_to.count("13800000001") == 1 and sent_to.count("13800000006") == 1
            v = [a for a in attempts if a.channel == "voice" and a.person == "li"]
            assert v[1].started_at - v[0].ended_at >= 1000  # the redial's spacing
            metrics = generate_latest(registry).decode()
            assert 'stationgw_attempt_outcomes_total{channel="voice",outcome="busy"} 1.0' in metrics
            assert (
                'stationgw_attempt_outcomes_total{channel="voice",outcome="confirmed"} 1.0'
                in metrics
            )
        finally:
            await d.stop()

    try:
        asyncio.run(main())
    finally:
        writer.submit(store.close).result()
        writer.shutdown()
        stub.close()


def test_a_lift_hangs_up_the_call_in_progress_and_says_so(tmp_path: Path) -> None:
    stub = GsmModemStub.open(model="simcom")
    stub.scenarios["13800000001"] = ["answer"]  # listens, never presses a key
    cfg = station(
        tmp_path,
        notify={
            "mqtt": {"enabled": False},
            "sms": {"port": stub.port, "poll_s": 60, "timeout_s": 3, "modem": "simcom"},
            # a long message, listened to for up to 20 s: the lift comes in the middle
            "voice": {"ring_s": 2, "repeat": 1, "key_wait_s": 20, "speech_s": 2},
        },
        tickets={
            "calling": {
                "red": {
                    "voice_after": "0s",
                    "redials": 3,
                    "redial_every": "1s",
                    "not_reached_after": "10m",
                    "channels": ["sms"],
                }
            }
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
        assert cfg.notify.sms is not None and cfg.notify.voice is not None
        sms = SmsChannel(cfg.notify.sms, d.on_ack)
        voice = VoiceChannel(sms, cfg.notify.voice, d.on_ack, lambda i: i in desk.stopped)
        d.add_channels({"sms": sms, "voice": voice}, None)
        await d.start()
        try:
            writer.submit(
                ing.commit, Batch(readings=[Reading("rg-01", "rain_mm", t0, 3.0)]), t0
            ).result()
            [w] = [t for t in writer.submit(store.tickets).result() if t.kind == "warning"]
            await until(lambda: bool(stub.calls and stub.calls[0]["spoken"]), "the call spoken")
            now = int(time.time() * 1000)
            writer.submit(desk.step, w.id, "lift", "zhao", "duty_officer", "雨停", (), now).result()

            def stopped() -> list[Any]:
                return [
                    a
                    for a in writer.submit(read_attempts, store, w.id).result()
                    if a.channel == "voice"
                ]

            await until(lambda: bool(stopped()), "the call's attempt", 15)
            [a] = stopped()
            assert (a.outcome, a.detail) == (
                "stopped",
                "stopped: warning lifted or lowered: hung up",
            )
            assert a.ended_at - now < 5000  # hung up, not after the 20 s of listening
            assert stub.calls[0]["ended"] == "host"
            await until(lambda: len(stub.sent) == 2, "the lift told by SMS")
            assert stub.sent[1] == (
                "13800000001",
                "【清水镇】后山滑坡 红色预警已解除，停止叫应，无需回复",
            )
            calls = writer.submit(read_calls, store, w.id).result()
            assert [c.outcome for c in calls if c.person == "li"] == ["lifted"]
            await asyncio.sleep(1.5)  # no redial after the lift
            assert len(stub.calls) == 1
        finally:
            await d.stop()

    try:
        asyncio.run(main())
    finally:
        writer.submit(store.close).result()
        writer.shutdown()
        stub.close()


def test_a_modem_that_stops_answering_fails_the_attempt_and_comes_back() -> None:
    stub = GsmModemStub.open(model="quectel")
    try:
        stub.scenarios["13800000001"] = ["confirm"]
        m = Modem(Path(stub.port), timeout_s=0.5)
        stub.silent = True
        with pytest.raises(DeliveryError, match="no answer from modem"):
            call(m, "quectel", "13800000001", "测试", QUICK)
        assert stub.calls == []  # never dialled
        stub.silent = False
        r = call(m, "quectel", "13800000001", "测试", QUICK)
        assert r.outcome == "confirmed"
        m.close()
    finally:
        stub.close()
