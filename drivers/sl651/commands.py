"""SL 651-2014 commands to a station (pure): names, checked parameters, the downlink frame,
and whether an uplink frame answers it.

The centre's downlink bodies (6.6.4.10–6.6.4.31): serial · send time (6 BCD) · what the
function's table gives. Serial 0 for frames the centre starts (6.6.2.4). Every parameter
is checked against the standard's range before anything is built; `CommandError` names the
parameter and what is wrong (the gateway answers it with a 4xx / exit 2, nothing sent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, tzinfo

from drivers.link.commands import Command, CommandError
from drivers.link.config import TransportModel
from drivers.sl651 import elements as tables
from drivers.sl651.codec import BEIJING, ENQ, Frame, bcd_time, encode

__all__ = ["COMMANDS", "Command", "CommandError", "answer_text", "answers", "body", "check"]


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("clock.set", 0x4A, "设置遥测站时钟", "(none: the gateway's clock)"),
        Command("clock.read", 0x51, "查询遥测站时钟", "(none)"),
        Command("report.now", 0x37, "查询实时数据", "(none)"),
        Command(
            "history",
            0x38,
            "查询时段数据",
            "element=PT|Z|DRP|… start=YYYY-MM-DDTHH end=YYYY-MM-DDTHH step=5m|1h|1d|0",
        ),
        Command("element.read", 0x3A, "查询指定要素数据", "elements=PT,Z,…"),
        Command("config.read", 0x41, "读取基本配置表", "ids=01,02,0C,…"),
        Command("config.set", 0x40, "修改基本配置表", "0C=1 (identifier=value, table D.1)"),
        Command("params.read", 0x43, "读取运行参数配置表", "ids=20,21,…"),
        Command("params.set", 0x42, "修改运行参数配置表", "20=6 21=5 … (table D.4)"),
        Command("version", 0x45, "查询软件版本", "(none)"),
        Command("status", 0x46, "查询状态和报警信息", "(none)"),
        Command("events", 0x50, "查询事件记录", "(none)"),
        Command("manual.read", 0x39, "查询人工置数", "(none)"),
    )
}

NAME_BY_FUNCTION: dict[int, str] = {c.function: c.name for c in COMMANDS.values()}

# Table D.4 (running parameters): identifier -> (digits D, decimals d, allowed values or range)
RUNNING: dict[int, tuple[int, int, tuple[float, ...] | tuple[float, float, str]]] = {
    0x20: (2, 0, (1, 2, 3, 4, 6, 8, 12, 24)),
    0x21: (2, 0, (0, 59, "range")),
    0x22: (2, 0, (0, 23, "range")),
    0x23: (4, 0, (0, 9999, "range")),
    0x24: (2, 0, (1, 59, "range")),
    0x25: (2, 1, (1, 0.5, 0.2, 0.1)),
    0x26: (2, 1, (1, 0.5, 0.1)),
    0x27: (2, 0, (1, 99, "range")),
    **{0x28 + i: (7, 3, (-9999.999, 9999.999, "range")) for i in range(8)},
    **{0x30 + i: (5, 3, (-99.999, 99.999, "range")) for i in range(8)},
    **{0x38 + i: (4, 2, (0, 99.99, "range")) for i in range(8)},
    0x40: (3, 2, (0, 9.99, "range")),
    0x41: (3, 2, (0, 9.99, "range")),
    0x42: (6, 3, (0, 999.999, "range")),
    0x43: (5, 3, (0, 99.999, "range")),
    0x44: (3, 2, (0, 9.99, "range")),
    0x45: (6, 0, (0, 999999, "range")),
    0x46: (4, 0, (0, 9999, "range")),
    0x47: (4, 2, (0, 99.99, "range")),
    0x48: (2, 1, (0, 9.9, "range")),
}
# Table D.1 parameters whose data the gateway can write: identifier -> (bytes, kind)
CONFIG: dict[int, tuple[int, str]] = {
    0x01: (4, "hex"),  # four centre addresses, 1 byte each
    0x02: (5, "address"),  # the station address, N(10)
    0x03: (2, "hex"),  # password
    0x0C: (1, "mode"),  # working mode 1–4, N(2)
}
STEP = re.compile(r"(\d+)([mhd])|0")


def _bcd_digits(n: int, nbytes: int) -> bytes:
    text = f"{n:0{nbytes * 2}d}"
    return bytes.fromhex(text)


def _definition(nbytes: int, decimals: int) -> int:
    return nbytes << 3 | decimals


def _running_value(ident: int, raw: str) -> bytes:
    digits, decimals, allowed = RUNNING[ident]
    what = f"{ident:02X} {tables.RUNNING[ident]}"
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(f"{what}: {raw!r} is not a number") from None
    if allowed[-1] == "range":
        low, high = float(allowed[0]), float(allowed[1])
        if not low <= value <= high:
            raise CommandError(f"{what}: {raw} is outside {allowed[0]}…{allowed[1]}")
    elif value not in allowed:
        raise CommandError(f"{what}: {raw} is not one of {', '.join(map(str, allowed))}")
    scaled = round(abs(value) * 10**decimals)
    if not math.isclose(scaled, abs(value) * 10**decimals, abs_tol=1e-6):
        raise CommandError(f"{what}: {raw} has more than {decimals} decimals")
    nbytes = (digits + 1) // 2
    data = _bcd_digits(scaled, nbytes)
    if value < 0:  # 6.6.3.3 a: FF before the digits
        nbytes += 1
        data = b"\xff" + data
    return bytes([ident, _definition(nbytes, decimals)]) + data


def _config_value(ident: int, raw: str) -> bytes:
    nbytes, kind = CONFIG[ident]
    what = f"{ident:02X} {tables.PARAMETERS[ident]}"
    if kind == "mode":
        if raw not in ("1", "2", "3", "4"):
            raise CommandError(f"{what}: {raw!r} is not 1, 2, 3 or 4")
        data = _bcd_digits(int(raw), 1)
    elif kind == "address":
        if not re.fullmatch(r"[0-9A-Fa-f]{10}", raw):
            raise CommandError(f"{what}: {raw!r} is not 10 hex digits")
        data = bytes.fromhex(raw)
    else:
        if not re.fullmatch(rf"[0-9A-Fa-f]{{{2 * nbytes}}}", raw):
            raise CommandError(f"{what}: {raw!r} is not {2 * nbytes} hex digits")
        data = bytes.fromhex(raw)
    return bytes([ident, _definition(nbytes, 0)]) + data


def _ids(raw: str | None, known: Mapping[int, object], what: str) -> list[int]:
    if not raw:
        raise CommandError(f"{what}: give ids=… (identifiers in hex, comma-separated)")
    out = []
    for part in raw.split(","):
        try:
            ident = int(part, 16)
        except ValueError:
            raise CommandError(f"{what}: {part!r} is not a hex identifier") from None
        if ident not in known:
            raise CommandError(f"{what}: identifier {part} is not in appendix D")
        out.append(ident)
    return out


def _hour(raw: str | None, key: str, tz: tzinfo) -> datetime:
    if not raw:
        raise CommandError(f"history: {key}=YYYY-MM-DDTHH is missing")
    try:
        t = datetime.strptime(raw, "%Y-%m-%dT%H").replace(tzinfo=tz)
    except ValueError:
        raise CommandError(f"history: {key}={raw!r} is not YYYY-MM-DDTHH") from None
    return t


def body(name: str, args: dict[str, str], now_ms: int, tz: tzinfo = BEIJING) -> bytes:
    """The downlink body after serial 0 and the send time, or CommandError."""
    if name not in COMMANDS:
        raise CommandError(f"unknown SL651 command {name!r}; one of {', '.join(COMMANDS)}")
    head = b"\x00\x00" + bcd_time(now_ms, tz)
    allowed: set[str] = set()
    extra = b""
    if name == "history":
        allowed = {"element", "start", "end", "step"}
        symbol = args.get("element", "")
        if symbol not in tables.BY_SYMBOL or tables.BY_SYMBOL[symbol] in (0xF0, 0xF1, 0x04):
            raise CommandError(f"history: element={symbol!r} is not an element of table C.1")
        start, end = _hour(args.get("start"), "start", tz), _hour(args.get("end"), "end", tz)
        if end < start:
            raise CommandError("history: end is before start")
        step = args.get("step", "5m")
        m = STEP.fullmatch(step)
        if not m:
            raise CommandError(f"history: step={step!r} is not 5m, 1h, 1d or 0")
        d = h = mi = 0
        if step != "0":
            n, unit = int(m.group(1)), m.group(2)
            limit = {"m": 59, "h": 23, "d": 31}[unit]
            if not 1 <= n <= limit:
                raise CommandError(f"history: step={step} is outside 1…{limit}{unit} (table C.3)")
            d, h, mi = (n, 0, 0) if unit == "d" else (0, n, 0) if unit == "h" else (0, 0, n)
        code = tables.BY_SYMBOL[symbol]
        spec = tables.ELEMENTS[code]
        definition = (
            0x60
            if code == 0xF4
            else 0xC0
            if code in tables.ARRAYS
            else _definition((spec.digits + 1) // 2, spec.decimals)
        )
        extra = (
            bcd_time(int(start.timestamp()) * 1000, tz, 4)
            + bcd_time(int(end.timestamp()) * 1000, tz, 4)
            + bytes([0x04, 0x18])
            + _bcd_digits(d, 1)
            + _bcd_digits(h, 1)
            + _bcd_digits(mi, 1)
            + bytes([code, definition])
        )
    elif name == "element.read":
        allowed = {"elements"}
        symbols = [s for s in args.get("elements", "").split(",") if s]
        if not symbols:
            raise CommandError("element.read: give elements=PT,Z,…")
        for s in symbols:
            if s not in tables.BY_SYMBOL:
                raise CommandError(f"element.read: {s!r} is not an element of table C.1")
            spec = tables.ELEMENTS[tables.BY_SYMBOL[s]]
            extra += bytes(
                [tables.BY_SYMBOL[s], _definition((spec.digits + 1) // 2, spec.decimals)]
            )
    elif name in ("config.read", "params.read"):
        allowed = {"ids"}
        names = tables.PARAMETERS if name == "config.read" else tables.RUNNING
        for ident in _ids(args.get("ids"), names, name):
            if ident in RUNNING:
                size, decimals = (RUNNING[ident][0] + 1) // 2, RUNNING[ident][1]
            elif ident in CONFIG:
                size, decimals = CONFIG[ident][0], 0
            else:  # variable length (channels, relay ranges …): the station gives it
                size, decimals = 0, 0
            extra += bytes([ident, _definition(size, decimals)])
    elif name in ("config.set", "params.set"):
        if not args:
            raise CommandError(f"{name}: give identifier=value pairs")
        for key, raw in args.items():
            try:
                ident = int(key, 16)
            except ValueError:
                raise CommandError(f"{name}: {key!r} is not a hex identifier") from None
            if name == "params.set":
                if ident not in RUNNING:
                    raise CommandError(f"{name}: {key} is not a running parameter of table D.4")
                extra += _running_value(ident, raw)
            else:
                if ident not in CONFIG:
                    raise CommandError(
                        f"{name}: {key} is not a configuration the gateway writes "
                        f"({', '.join(f'{k:02X}' for k in CONFIG)})"
                    )
                extra += _config_value(ident, raw)
        allowed = set(args)
    for key in args:
        if key not in allowed:
            raise CommandError(f"{name}: unknown parameter {key!r}")
    return head + extra


def check(name: str, args: dict[str, str], transport: TransportModel, now_ms: int) -> None:
    """The registry's check (drivers/link/commands.py): CommandError, or the command is good."""
    body(name, args, now_ms)


def frame(
    name: str,
    args: dict[str, str],
    *,
    centre: int,
    station: str,
    password: str,
    now_ms: int,
    tz: tzinfo = BEIJING,
) -> bytes:
    """The whole downlink frame (HEX/BCD, end ENQ: the centre asks, table 21)."""
    return encode(
        centre=centre,
        station=station,
        password=password,
        function=COMMANDS[name].function if name in COMMANDS else 0,
        body=body(name, args, now_ms, tz),
        downlink=True,
        end=ENQ,
    )


def answers(name: str, reply: Frame) -> bool:
    """Whether an uplink frame is the station's answer to command `name`."""
    return (
        name in COMMANDS
        and not reply.header.downlink
        and reply.header.function == COMMANDS[name].function
    )


def answer_text(reply: Frame) -> str:
    """What the station answered, in Chinese, for the audit and the page."""
    parts = [f"{k}: {v}" for k, v in reply.fields]
    parts += [
        f"{e.name}={e.value if e.value is not None else '无数据'}{e.unit or ''}"
        for e in reply.elements[:24]
    ]
    if reply.header.function in (0x4A, 0x51) and reply.sent_at is not None:
        t = datetime.fromtimestamp(reply.sent_at / 1000, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        parts = [f"遥测站时钟: {t}"]
    if reply.text and not any(k == "软件版本" for k, _ in reply.fields):
        parts.append(reply.text)
    return "; ".join(parts) if parts else "已确认"
