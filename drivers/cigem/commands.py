"""CIGEM `$cmd` downlinks (pure): names, checked parameters, the query string, and what
the device's answer means.

The layout is a public device firmware's (see drivers/cigem/testdata/README.md): the
device subscribes to `$creq/<devId>/+` and takes `$cmd=<name>&key=value…`; it answers on
`$dr` with `$cmd=<name>&result=succ|fail`, or with the values asked for
(`$cmd=reqtime&time=YYYY-MM-DD hh:mm:ss`, `$cmd=getstatus&state={…}`,
`$cmd=reqsensortime&sensor_id=…&sample_intv=…&upload_intv=…&plus_intv=…`).
"""

from __future__ import annotations

import re

from drivers.cigem.config import CigemTransport
from drivers.link.commands import Command, CommandError, only, unknown
from drivers.link.config import TransportModel

__all__ = ["COMMANDS", "Command", "CommandError", "answer", "check", "query"]

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "interval.set",
            0,
            "设置采集与上报间隔",
            "sensor_id=L1_LF_1 sample_intv=N upload_intv=N plus_intv=N",
        ),
        Command("interval.read", 0, "查询采集与上报间隔", "sensor_id=L1_LF_1"),
        Command("clock.set", 0, "校时 (NTP 服务器)", "server=HOST"),
        Command("clock.read", 0, "查询设备时钟", "(none)"),
        Command("status", 0, "查询设备状态", "(none)"),
        Command("reboot", 0, "重启设备", "(none)"),
    )
}
CMD = {  # our name -> the firmware's $cmd
    "interval.set": "setsensortime",
    "interval.read": "reqsensortime",
    "clock.set": "settime",
    "clock.read": "reqtime",
    "status": "getstatus",
    "reboot": "reboot",
}
NAME_OF = {v: k for k, v in CMD.items()}
INTERVALS = ("sample_intv", "upload_intv", "plus_intv")
MAX_INTERVAL = 65535  # the firmware keeps each interval in 16 bits
HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _sensor(name: str, args: dict[str, str], t: CigemTransport) -> str:
    sensor = args.get("sensor_id")
    known = sorted({s.split(".")[0] for s in t.sensors})
    if not sensor:
        raise CommandError(f"{name}: sensor_id=… is missing (one of {', '.join(known)})")
    if sensor not in known:
        raise CommandError(
            f"{name}: sensor_id={sensor!r} is not a sensor of this device ({', '.join(known)})"
        )
    return sensor


def query(name: str, args: dict[str, str], transport: TransportModel) -> str:
    """The `$cmd=…` payload; CommandError naming what is wrong."""
    if name not in COMMANDS:
        raise unknown("CIGEM", name, COMMANDS)
    if not isinstance(transport, CigemTransport):
        raise CommandError(f"{name}: not a CIGEM device")
    parts = [f"$cmd={CMD[name]}"]
    if name == "interval.set":
        only(name, args, {"sensor_id", *INTERVALS})
        parts.append(f"sensor_id={_sensor(name, args, transport)}")
        for key in INTERVALS:
            raw = args.get(key)
            if raw is None:
                raise CommandError(f"{name}: {key}=… is missing")
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_INTERVAL:
                raise CommandError(f"{name}: {key}={raw!r} is not a whole number 1…{MAX_INTERVAL}")
            parts.append(f"{key}={int(raw)}")
    elif name == "interval.read":
        only(name, args, {"sensor_id"})
        parts.append(f"sensor_id={_sensor(name, args, transport)}")
    elif name == "clock.set":
        only(name, args, {"server"})
        server = args.get("server", "")
        if not HOST.fullmatch(server):
            raise CommandError(f"{name}: server={server!r} is not a host name or address")
        parts.append(f"server={server}")
    else:
        only(name, args, set())
    return "&".join(parts)


def check(name: str, args: dict[str, str], transport: TransportModel, now_ms: int) -> None:
    query(name, args, transport)


def answer(payload: bytes) -> tuple[str, bool, str] | None:
    """A `$dr` answer: (our command name, succeeded, the words for the audit), or None
    when it is no answer to a command of ours."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not text.startswith("$cmd="):
        return None
    cmd, _, rest = text[5:].partition("&")
    name = NAME_OF.get(cmd.strip())
    if name is None:
        return None
    rest = rest.strip()
    if rest.startswith("state="):  # getstatus: the rest is JSON, not key=value
        return name, True, f"设备状态: {rest[6:]}"
    # some firmware writes " & " between the pairs
    fields = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in rest.split("&")) if k}
    result = fields.pop("result", None)
    if result is not None:
        ok = result.strip() == "succ"
        return name, ok, "成功 (succ)" if ok else "设备回复失败 (result=fail)"
    if name == "clock.read" and "time" in fields:
        return name, True, f"设备时钟: {fields['time']}"
    return name, True, "; ".join(f"{k}={v}" for k, v in fields.items()) or "已应答"
