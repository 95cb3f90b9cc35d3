"""A small station with a grid, people and a duty roster for the warning-loop tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config.station import Config, parse_config

T0 = 1_780_000_000_000  # 2026-05-28 20:26:40 UTC = 2026-05-29 04:26:40 Asia/Shanghai
MIN = 60_000


def station(tmp_path: Path, **extra: Any) -> Config:
    data: dict[str, Any] = {
        "station": {"id": "qs", "name": "清水镇"},
        "villages": [{"id": "xiaxi", "name": "下溪村"}],
        "points": [{"id": "slope", "name": "后山滑坡", "village": "xiaxi", "group": "g1"}],
        "devices": [
            {
                "id": "rg-01",
                "name": "雨量计",
                "kind": "rain_gauge",
                "point": "slope",
                "metrics": {"rain_mm": {"unit": "mm", "min": 0, "max": 100}},
            }
        ],
        "database": {"path": str(tmp_path / "t.db")},
        "people": [
            {
                "id": "li",
                "name": "李网格",
                "phone": "13800000001",
                "roles": ["grid_member"],
                "grid": "point:slope",
            },
            {
                "id": "zhou",
                "name": "周组长",
                "phone": "13800000002",
                "roles": ["grid_member"],
                "grid": "group:g1",
            },
            {
                "id": "chen",
                "name": "陈村长",
                "phone": "13800000003",
                "roles": ["leader"],
                "grid": "village:xiaxi",
                "absent": True,
                "deputy": "he",
            },
            {"id": "he", "name": "何副村长", "phone": "13800000004", "roles": ["leader"]},
            {
                "id": "wang",
                "name": "王镇长",
                "phone": "13800000005",
                "roles": ["leader"],
                "grid": "township",
            },
            {"id": "zhao", "name": "赵值班", "phone": "13800000006", "roles": ["duty_officer"]},
            {"id": "sun", "name": "孙技术", "phone": "13800000007", "roles": ["technician"]},
        ],
        "duty": [{"officer": "zhao", "start": "00:00", "end": "00:00"}],
    }
    data.update(extra)
    return parse_config(data, tmp_path / "station.toml")
