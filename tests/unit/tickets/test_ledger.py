"""The hazard ledger export, checked cell by cell against the tickets that produced it;
the summary of a warning."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.ingest.commit import Ingestor
from gateway.tickets import ledger
from gateway.tickets.desk import Desk
from gateway.tickets.lifecycle import Step
from gateway.tickets.store import StationStore
from gateway.tickets.summary import summarize
from rules.evaluator import RuleSet
from rules.model import DeviceInfo, ThresholdRule
from tests.unit.tickets.loop_helpers import MIN, T0, station

RAIN = ThresholdRule(
    "rain", "短时强降雨", "rain_mm", "above", ((Level.BLUE, 2.0), (Level.YELLOW, 5.0))
)
HOUR = 60 * MIN


def build(tmp_path: Path) -> tuple[StationStore, Desk]:
    cfg = station(tmp_path, tickets={"deadlines": {"control": {"yellow": "1h"}}})
    store = StationStore(cfg.database.path)
    store.register_devices(["rg-01"])
    desk = Desk(store, cfg)
    ing = Ingestor(store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), desk)
    ing.commit(
        Batch(readings=[Reading("rg-01", "rain_mm", T0, 6.0)]), now=T0
    )  # #1 hazard, #2 warning
    desk.step(1, Step.CONFIRM, "zhao", "duty_officer", None, (), T0 + 5 * MIN)
    desk.step(
        1,
        Step.CONTROL,
        "李网格",
        "grid_member",
        "设置警戒线，疏散3户",
        ["photo:001.jpg"],
        T0 + 20 * MIN,
    )
    desk.step(1, Step.RECTIFY, "孙技术", "technician", "清理排水沟", (), T0 + 2 * HOUR)
    desk.step(1, Step.CLOSE, "王镇长", "leader", "复查合格", (), T0 + 3 * HOUR)
    desk.acknowledge(2, "li", "mqtt", "已到位", T0 + 4 * MIN)
    desk.report(
        title="下溪村路边落石",
        point="slope",
        level=Level.BLUE,
        by="李网格",
        role="grid_member",
        note="巡查发现",
        attachments=(),
        now=T0 + HOUR,
    )
    desk.step(3, Step.DISMISS, "王镇长", "leader", "误报：已清理", (), T0 + HOUR + MIN)
    return store, desk


# 2026-05-29 04:26:40 Asia/Shanghai is T0
EXPECTED = [
    [
        1,
        "0001",
        "隐患",
        "短时强降雨 黄色 rg-01",
        "黄色",
        "slope",
        "rg-01/rain_mm",
        "2026-05-29 04:26:40",
        "系统（规则 rain）",
        "2026-05-29 04:31:40",
        "赵值班",
        "2026-05-29 04:46:40",
        "设置警戒线，疏散3户",
        "李网格",
        "2026-05-29 06:26:40",
        "清理排水沟",
        "孙技术",
        "2026-05-29 07:26:40",
        "王镇长",
        "已核销",
        "",
        "",
        "否",
        "rain_mm 6 ≥ 黄色阈值 5 / rain_mm 6 ≥ yellow threshold 5",
    ],
    [
        2,
        "0002",
        "预警",
        "后山滑坡 黄色预警",
        "黄色",
        "slope",
        "",
        "2026-05-29 04:26:40",
        "系统（规则 rain）",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "预警中",
        "李网格",
        "2026-05-29 04:30:40",
        "否",
        "短时强降雨: rain_mm 6 ≥ 黄色阈值 5 / rain_mm 6 ≥ yellow threshold 5",
    ],
    [
        3,
        "0003",
        "隐患",
        "下溪村路边落石",
        "蓝色",
        "slope",
        "",
        "2026-05-29 05:26:40",
        "李网格",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "已撤销（误报）",
        "",
        "",
        "否",
        "误报：已清理",
    ],
]


def test_csv_cell_by_cell(tmp_path: Path) -> None:
    store, _ = build(tmp_path)
    data = ledger.to_csv(ledger.rows(store, None, None, T0 + 5 * HOUR))
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the Chinese
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == list(ledger.HEADERS)
    assert table[0][:8] == [
        "序号",
        "编号",
        "类别",
        "隐患名称",
        "预警级别",
        "监测点",
        "设备",
        "发现时间",
    ]
    assert table[1:] == [[str(c) for c in row] for row in EXPECTED]


def test_xlsx_cell_by_cell_and_time_range(tmp_path: Path) -> None:
    store, _ = build(tmp_path)
    data = ledger.to_xlsx(ledger.rows(store, None, None, T0 + 5 * HOUR))
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws.title == "隐患台账" and ws["A1"].value == "隐患台账"
    cells = [
        [c if c is not None else "" for c in row]
        for row in ws.iter_rows(min_row=2, values_only=True)
    ]
    assert cells[0] == list(ledger.HEADERS)
    assert cells[1:] == EXPECTED
    later = ledger.rows(store, T0 + HOUR, None, T0 + 5 * HOUR)
    assert [r[1] for r in later] == ["0003"]


def test_overdue_flag(tmp_path: Path) -> None:
    cfg = station(tmp_path, tickets={"deadlines": {"confirm": {"yellow": "30m"}}})
    store = StationStore(cfg.database.path)
    desk = Desk(store, cfg)
    ing = Ingestor(store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), desk)
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 6.0)]), now=T0)
    t = store.ticket(1)
    assert t is not None and t.due_at == T0 + 30 * MIN
    assert next(r[22] for r in ledger.rows(store, None, None, T0 + 29 * MIN)) == "否"
    assert next(r[22] for r in ledger.rows(store, None, None, T0 + 31 * MIN)) == "是"
    assert t.to_json(T0 + 31 * MIN)["overdue"] is True


def test_summary_of_a_warning(tmp_path: Path) -> None:
    store, _desk = build(tmp_path)
    s = summarize(store, 2)
    assert s["outcome"] == "acknowledged by 李网格 via mqtt after 240.0 s"
    assert [(c["name"], c["outcome"], c["response_s"]) for c in s["calls"]] == [
        ("李网格", "acknowledged", 240.0)
    ]
    assert s["escalated_past"] == []
    hazard = summarize(store, 1)
    assert [x["step"] for x in hazard["steps"]] == ["confirm", "control", "rectify", "close"]


def test_cli_export_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    store, _ = build(tmp_path)
    db = str(store.path)
    store.close()
    out = tmp_path / "l.csv"
    # T0 is 2026-05-29 04:26:40 station time; the report came an hour later
    assert (
        main(
            [
                "tickets",
                "export",
                "--db",
                db,
                "--from",
                "2026-05-29T05:00",
                "--format",
                "csv",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["0003"]
    assert main(["tickets", "export", "--db", db, "--to", "2026-05-29", "--out", str(out)]) == 0
    assert len(out.read_bytes().decode("utf-8-sig").splitlines()) == 1  # headers only
    assert main(["tickets", "export", "--db", db, "--from", "yesterday"]) == 2
    capsys.readouterr()
    assert main(["tickets", "summary", "2", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "outcome: acknowledged by 李网格 via mqtt after 240.0 s" in text
    assert main(["tickets", "summary", "99", "--db", db]) == 1


def test_a_ticket_opened_elsewhere_is_adopted(tmp_path: Path) -> None:
    from gateway.tickets.model import TicketKind

    cfg = station(tmp_path, tickets={"deadlines": {"confirm": {"red": "15m"}}})
    store = StationStore(cfg.database.path)
    desk = Desk(store, cfg)
    with store.transaction():
        tid = store.open_ticket(
            kind=TicketKind.HAZARD,
            level=Level.RED,
            title="火警",
            device=None,
            metric=None,
            point=None,
            rule=None,
            value=None,
            reason=None,
            actor="panel",
            at=T0,
        )
        desk.adopt(tid, T0)
        desk.adopt(tid, T0 + MIN)  # once only
    t = store.ticket(tid)
    assert t is not None and (t.code, t.due_at) == (f"{tid:04d}", T0 + 15 * MIN)


def test_a_raise_shortens_the_stage_deadline(tmp_path: Path) -> None:
    cfg = station(tmp_path, tickets={"deadlines": {"confirm": {"blue": "24h", "yellow": "1h"}}})
    store = StationStore(cfg.database.path)
    ing = Ingestor(
        store, RuleSet([RAIN], {"rg-01": DeviceInfo("rg-01", "slope")}), Desk(store, cfg)
    )
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0, 3.0)]), now=T0)
    assert store.ticket(1).due_at == T0 + 24 * HOUR  # type: ignore[union-attr]
    ing.commit(Batch(readings=[Reading("rg-01", "rain_mm", T0 + MIN, 6.0)]), now=T0 + MIN)
    assert store.ticket(1).due_at == T0 + MIN + HOUR  # type: ignore[union-attr]
