"""GB/T 26875.3 requests and controls from the centre (pure): names, checked parameters,
the application data unit, and the words for an answer.

Application data unit: information type (1) · object count (1) · objects (8.1, table 3).
- `system.read` — type 61 读建筑消防设施系统状态, command 4 (request); object: system type
  (1) · system address (1). Answered with command 5 (response) carrying type 1 objects.
- `component.read` — type 62 读建筑消防设施部件运行状态, command 4; object: system type (1)
  · system address (1) · component address (4, little-endian, as in the type 2 upload).
  Answered with command 5 carrying type 2 objects (component status).
- `clock.set` — type 90 同步用户信息传输装置时钟, command 1 (control); object: the
  centre's time (6: s m h D M Y, the frame header's layout). Answered with command 3
  (confirm), or 6 (deny).
The answer carries the serial of the request (the centre numbers its own frames).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from drivers.gb26875 import codec
from drivers.link.commands import Command, CommandError, only, unknown
from drivers.link.config import TransportModel

__all__ = ["COMMANDS", "Command", "CommandError", "answer_text", "application_data", "check"]

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("system.read", 61, "读建筑消防设施系统状态", "system_type=N system_address=N"),
        Command(
            "component.read",
            62,
            "读建筑消防设施部件运行状态",
            "system_type=N system_address=N component_address=N",
        ),
        Command("clock.set", 90, "同步用户信息传输装置时钟", "(none: the gateway's clock)"),
    )
}
CONTROL, REQUEST = 1, 4
COMMAND_OF = {"system.read": REQUEST, "component.read": REQUEST, "clock.set": CONTROL}


def _int(name: str, args: dict[str, str], key: str, high: int) -> int:
    raw = args.get(key)
    if raw is None:
        raise CommandError(f"{name}: {key}=… is missing")
    try:
        n = int(raw, 0)
    except ValueError:
        raise CommandError(f"{name}: {key}={raw!r} is not a whole number") from None
    if not 0 <= n <= high:
        raise CommandError(f"{name}: {key}={raw} is outside 0…{high}")
    return n


def application_data(name: str, args: dict[str, str], now_ms: int, tz: tzinfo) -> bytes:
    """Type · count 1 · the object; CommandError naming what is wrong."""
    if name not in COMMANDS:
        raise unknown("GB/T 26875.3", name, COMMANDS)
    if name == "clock.set":
        only(name, args, set())
        t = datetime.fromtimestamp(now_ms / 1000, tz)
        obj = bytes([t.second, t.minute, t.hour, t.day, t.month, t.year - 2000])
    else:
        keys = {"system_type", "system_address"}
        if name == "component.read":
            keys.add("component_address")
        only(name, args, keys)
        obj = bytes([_int(name, args, "system_type", 255), _int(name, args, "system_address", 255)])
        if name == "component.read":
            obj += _int(name, args, "component_address", 2**32 - 1).to_bytes(4, "little")
    return bytes([COMMANDS[name].function, 1]) + obj


def check(name: str, args: dict[str, str], transport: TransportModel, now_ms: int) -> None:
    application_data(name, args, now_ms, codec.LOCAL)


def answer_text(frame: codec.Frame) -> str:
    """What the panel answered, in Chinese, for the audit and the page."""
    if frame.command == 3:
        return "已确认"
    parts = []
    for s in frame.statuses:
        where = (
            f"系统 {s.system_type}/{s.system_address}"
            if s.component_address is None
            else f"部件 {s.system_type}/{s.system_address}/{s.component_address}"
        )
        flags = "、".join(STATE_ZH.get(f, f) for f in s.flags) or "无状态位"
        desc = f" {s.description}" if s.description else ""
        parts.append(f"{where}{desc}: {flags}")
    return "; ".join(parts) or f"应答 (信息类型 {frame.info_type})"


STATE_ZH = {
    "normal": "正常运行",
    "fire_alarm": "火警",
    "fault": "故障",
    "disabled": "屏蔽",
    "supervisory": "监管",
    "started": "启动",
    "feedback": "反馈",
    "delayed": "延时",
    "main_power_fault": "主电故障",
    "backup_power_fault": "备电故障",
    "bus_fault": "总线故障",
    "manual": "手动",
}
