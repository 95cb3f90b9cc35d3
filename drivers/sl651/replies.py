"""Uplink bodies of the query/setting replies 40–51 (HEX/BCD), SL 651-2014 6.6.4.14–6.6.4.31.

Each is serial · send time · `F1 F1` station address, then what its table gives; the
values go into `Frame.fields` under the standard's Chinese names.
"""

from __future__ import annotations

from dataclasses import replace

from drivers.sl651 import elements as tables
from drivers.sl651.codec import STATION_ONLY, Frame, Sl651Error, _bcd, _code, _value, station_id


def _params(body: bytes, i: int, base: int, names: dict[int, str]) -> list[tuple[str, str]]:
    """Parameter identifier · definition byte · data (appendix D), to the end of the body."""
    out = []
    n = len(body)
    while i < n:
        at = base + i
        if i + 1 >= n:
            raise Sl651Error(f"parameter {body[i]:02X} has no definition byte", at)
        ident, definition = body[i], body[i + 1]
        size, decimals = definition >> 3, definition & 0x07
        data = body[i + 2 : i + 2 + size]
        if len(data) != size:
            raise Sl651Error(f"parameter {ident:02X} needs {size} bytes, {len(data)} left", at)
        name = names.get(ident, f"参数{ident:02X}")
        if ident in (0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E):
            shown = data.hex().upper()  # HEX codes, addresses, channels, bit sets
        elif ident == 0x0F:
            shown = data.decode("ascii", errors="replace")
        elif ident == 0x02:
            shown = _code(data)
        else:
            v = _value(data, decimals, base + i + 2) if data else None
            shown = "无数据" if v is None else f"{v:.{decimals}f}"
        out.append((f"{ident:02X} {name}", shown))
        i += 2 + size
    return out


def reply_body(frame: Frame, base: int) -> Frame:
    f, body = frame.header.function, frame.body
    if f in (0x40, 0x41, 0x42, 0x43, 0x45, 0x46, 0x49, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50) or (
        f in STATION_ONLY
    ):
        i, variants = station_id(frame, 8, base)
    else:
        note = f"function {f:02X} ({frame.header.function_name}) is not defined by SL 651-2014"
        return replace(frame, notes=(note,), fields=(("正文", body[8:].hex().upper()),))
    n = len(body)
    fields: list[tuple[str, str]] = []
    text = None
    if f in STATION_ONLY:
        if i != n:
            raise Sl651Error(f"{n - i} bytes after the station address", base + i)
        if f in (0x4A, 0x51):
            fields.append(("遥测站时钟", "见发报时间"))
    elif f in (0x40, 0x41):
        fields = _params(body, i, base, tables.PARAMETERS)
    elif f in (0x42, 0x43):
        fields = _params(body, i, base, tables.RUNNING)
    elif f == 0x45:
        if i >= n:
            raise Sl651Error("software version missing", base + i)
        size = body[i]
        data = body[i + 1 : i + 1 + size]
        if len(data) != size:
            raise Sl651Error(f"software version says {size} bytes, {len(data)} present", base + i)
        text = data.decode("ascii", errors="replace")
        fields.append(("软件版本", text))
    elif f in (0x46, 0x4B):
        if body[i : i + 2] != b"\x45\x20" or n - i != 6:
            raise Sl651Error("expected 45 20 and a 4-byte status word (table 58)", base + i)
        bits = int.from_bytes(body[i + 2 : i + 6], "big")
        fields += [("状态字", f"{bits:08X}"), ("状态及报警", tables.status_text(bits))]
    elif f == 0x49:
        if body[i : i + 2] != b"\x03\x10" or n - i != 4:
            raise Sl651Error("expected 03 10 and the 2-byte new password (table 66)", base + i)
        fields.append(("新密码", body[i + 2 : i + 4].hex().upper()))
    elif f in (0x4C, 0x4D):
        what = "水泵" if f == 0x4C else "阀门"
        fields.append((f"{what}开关状态", _switches(body, i, base, what)))
    elif f == 0x4E:
        fields += _gates(body, i, base)
    elif f == 0x4F:
        if n - i != 1 or body[i] not in (0x00, 0xFF):
            raise Sl651Error("expected one byte FF (投入) or 00 (退出) (table 81)", base + i)
        fields.append(("水量定值控制", "已投入" if body[i] == 0xFF else "已退出"))
    elif f == 0x50:
        if n - i != 64:
            raise Sl651Error(f"event record is 64 bytes (table 84), {n - i} present", base + i)
        for k in range(32):
            count = int.from_bytes(body[i + 2 * k : i + 2 * k + 2], "big")
            name = tables.EVENTS[k] if k < len(tables.EVENTS) else "备用"
            if count or k < len(tables.EVENTS):
                fields.append((f"ERC{k + 1} {name}", str(count)))
    return replace(frame, fields=tuple(fields), text=text, variants=variants)


def _switches(body: bytes, i: int, base: int, what: str) -> str:
    """Tables 71 and 74: a byte count, then bit k of the bytes = unit k+1 on (1) / off (0)."""
    if i >= len(body):
        raise Sl651Error(f"{what} state missing", base + i)
    size = body[i]
    data = body[i + 1 : i + 1 + size]
    if len(data) != size or i + 1 + size != len(body):
        raise Sl651Error(f"{what} state says {size} bytes, {len(body) - i - 1} present", base + i)
    bits = int.from_bytes(data[::-1], "big")
    return " ".join(f"{k + 1}号{'开' if bits >> k & 1 else '关'}" for k in range(8 * size))


def _gates(body: bytes, i: int, base: int) -> list[tuple[str, str]]:
    """Table 77: gate count, ceil(n/8) bytes of open/closed bits, n × 2-byte BCD openings (cm)."""
    if i >= len(body):
        raise Sl651Error("gate count missing", base + i)
    count = body[i]
    nbytes = (count + 7) // 8
    need = 1 + nbytes + 2 * count
    if len(body) - i != need:
        raise Sl651Error(
            f"{count} gates need {need} bytes (table 77), {len(body) - i} present", base + i
        )
    bits = int.from_bytes(body[i + 1 : i + 1 + nbytes][::-1], "big")
    out = [("闸门数", str(count))]
    for k in range(count):
        at = i + 1 + nbytes + 2 * k
        cm = _bcd(body[at : at + 2], base + at)
        out.append((f"{k + 1}号闸门", f"{'开' if bits >> k & 1 else '关'} 开度{cm}厘米"))
    return out
