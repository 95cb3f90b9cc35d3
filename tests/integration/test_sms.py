"""SMS through the GSM modem stub over a real pseudo-terminal, in Chinese: a warning is
sent as UCS2, a reply carrying the ticket's short code acknowledges the call; the modem's
errors (+CMS ERROR, no answer, unplugged) fail an attempt that is retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from firmware_stubs.gsm_modem import GsmModemStub
from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.events import Hub
from gateway.ingest.commit import Ingestor
from gateway.notify.base import DeliveryError
from gateway.notify.dashboard import DashboardChannel
from gateway.notify.dispatcher import Dispatcher
from gateway.notify.sms import Modem, SmsChannel
from gateway.tickets.desk import Desk
from gateway.tickets.records import read_calls, read_deliveries
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet
from rules.model import DeviceInfo, ThresholdRule
from tests.unit.tickets.loop_helpers import station

pytestmark = pytest.mark.integration
RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((Level.BLUE, 2.0), (Level.RED, 12.0))
)


@pytest.fixture
def modem() -> Any:
    stub = GsmModemStub.open()
    yield stub
    stub.close()


async def until(cond: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_warning_sms_in_chinese_and_a_reply_acknowledges(
    tmp_path: Path, modem: GsmModemStub
) -> None:
    cfg = station(
        tmp_path,
        notify={
            "mqtt": {"enabled": False},
            "sms": {"port": modem.port, "poll_s": 60, "timeout_s": 3},
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
        d.add_channels({"sms": SmsChannel(cfg.notify.sms, d.on_ack)}, None)  # type: ignore[arg-type]
        await d.start()
        try:
            writer.submit(
                ing.commit, Batch(readings=[Reading("rg-01", "rain_mm", t0, 3.0)]), t0
            ).result()
            [w] = [t for t in writer.submit(store.tickets).result() if t.kind == "warning"]
            await until(lambda: len(modem.sent) == 1, "the SMS")
            phone, text = modem.sent[0]
            assert phone == "13800000001"
            # point, level, the reading, what the plan says, how to answer: one segment
            assert text == (
                f"【清水镇】后山滑坡蓝色预警，短时强降雨，雨量 3 ≥ 蓝色阈值 2。"
                f"加强巡查，密切关注雨情水情。请回复{w.code}确认"
            )
            assert len(text) <= 70
            assert 'AT+CSCS="UCS2"' in modem.commands
            assert f'AT+CMGS="{"13800000001".encode("utf-16-be").hex().upper()}"' in modem.commands
            modem.receive("+8613800000001", f"收到{w.code}，马上去后山")
            await until(
                lambda: writer.submit(store.ticket, w.id).result().acknowledged_by == "李网格",  # type: ignore[union-attr]
                "the acknowledgement",
            )
            calls = writer.submit(read_calls, store, w.id).result()
            assert [(c.person, c.outcome, c.acked_via) for c in calls] == [
                ("li", "acknowledged", "sms")
            ]
            events = writer.submit(store.events, w.id).result()
            ack = [e for e in events if e.kind == "acknowledged"]
            assert [(e.actor, e.channel, e.note) for e in ack] == [
                ("李网格", "sms", f"收到{w.code}，马上去后山")
            ]
            await until(lambda: not modem.inbox, "the reply deleted from the SIM once stored")
            assert "AT+CMGR=1" in modem.commands and "AT+CMGD=1" in modem.commands
            sms = [x for x in writer.submit(read_deliveries, store).result() if x.channel == "sms"]
            assert [(x.status, x.attempts) for x in sms] == [("sent", 1)]
        finally:
            await d.stop()

    asyncio.run(main())
    writer.submit(store.close).result()
    writer.shutdown()


def test_modem_errors_fail_the_attempt(modem: GsmModemStub) -> None:
    m = Modem(Path(modem.port), timeout_s=1.0)
    assert m.send("13800000001", "测试") == "1"
    modem.cms_errors = 1
    with pytest.raises(DeliveryError, match=r"\+CMS ERROR: 500"):
        m.send("13800000001", "测试")
    assert m.send("13800000001", "再试") == "2"  # the next attempt goes through
    modem.receive("+8613800000002", "0007 收到，已通知村民")  # a notification lost: listed
    [sms] = m.inbox()
    assert (sms.sender, sms.text) == ("+8613800000002", "0007 收到，已通知村民")
    assert f'AT+CMGL="{"ALL".encode("utf-16-be").hex().upper()}"' in modem.commands
    assert [s.index for s in m.inbox()] == [sms.index]  # kept until deleted
    m.delete(sms.index)
    assert m.inbox() == []
    modem.silent = True
    with pytest.raises(DeliveryError, match=r"no (prompt|answer)"):
        m.send("13800000001", "无应答")
    modem.silent = False
    modem.unplug()
    with pytest.raises(DeliveryError, match=r"unplugged|unavailable|no answer"):
        m.send("13800000001", "拔出")
    with pytest.raises(DeliveryError):
        m.send("13800000001", "again")
    assert [t for _, t in modem.sent] == ["测试", "再试"]
    m.close()
