"""`stationgw decode hj212 TEXT`: one frame as JSON for a technician."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from drivers.hj212 import codec as hj212
from drivers.link.describe import iso, trailing


def describe(data: bytes, tz: tzinfo, now_ms: int) -> dict[str, Any]:
    f, rest = hj212.decode_frame(data)
    values = hj212.readings(f, tz)
    return {
        "protocol": "hj212",
        "layout": f.layout,
        "qn": f.qn,
        "st": f.st,
        "cn": f.cn,
        "cn_name": hj212.COMMAND_NAMES.get(f.cn),
        "pw": f.pw,
        "mn": f.mn,
        "flag": f.flag,
        "reply_wanted": f.reply_wanted,
        "reply": hj212.data_answer(f).decode("ascii").rstrip("\r\n")
        if f.reply_wanted and f.qn is not None and f.cn in hj212.DATA_COMMANDS
        else None,
        "length": len(f.raw) - 12,
        "crc": f"{f.crc:04X}",
        "cp": dict(f.cp),
        "notes": [] if f.layout == "2017" else ["HJ/T 212-2005 layout: no QN, no Flag"],
        "trailing": trailing(rest, len(f.raw)),
        "readings": [
            {
                "element": f"{code}-{suffix}",
                "value": value,
                "unit": None,
                "ts": iso(ts),
                "flag": flag,
                "flag_name": hj212.DATA_FLAGS.get(flag) if flag else None,
            }
            for code, suffix, value, ts, flag in values
        ],
    }
