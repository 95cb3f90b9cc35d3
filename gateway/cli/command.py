"""`stationgw command DEVICE NAME [key=value …]`: queue a command for a device (logging in
like `stationgw rules reload`); it goes out after the device's next report."""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from pathlib import Path

from drivers.link.commands import CommandError
from drivers.registry import PROTOCOLS
from gateway.config.station import load_config


def parse_args(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not key=value")
        out[key] = value
    return out


def cmd_command(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    device = next((d for d in cfg.devices if d.id == args.device), None)
    if device is None:
        raise ValueError(f"device {args.device!r} is not in {args.config}")
    commands = PROTOCOLS[device.transport.kind].command_set()
    if commands is None:
        raise ValueError(
            f"{device.name}: devices speaking {device.transport.kind} take no commands "
            f"({', '.join(k for k, p in PROTOCOLS.items() if p.commands)} do)"
        )
    params = parse_args(args.params)
    try:
        commands.check(args.name, params, device.transport, int(time.time() * 1000))
    except CommandError as e:  # exit 2, nothing queued
        raise ValueError(f"{device.name}: {e}") from None
    host = "127.0.0.1" if cfg.http.host in ("0.0.0.0", "::") else cfg.http.host
    from gateway.cli.users import login, read_password

    call = login(f"http://{host}:{cfg.http.port}", args.user, read_password(args))
    path = f"/api/devices/{urllib.parse.quote(args.device, safe='')}/commands"
    answer = call("POST", path, {"name": args.name, "args": params})
    title = commands.COMMANDS[args.name].title
    print(
        f"{device.name}: {title} ({args.name}) 已排队, 编号 {answer['id']}; "
        "设备下次上报后发送 (queued; sent after the device's next report)"
    )
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    return 0


def _names() -> str:
    out = []
    for kind, protocol in PROTOCOLS.items():
        commands = protocol.command_set()
        if commands is not None:
            out.append(f"{kind}: " + ", ".join(commands.COMMANDS))
    return "; ".join(out)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    names = _names()
    p = sub.add_parser("command", help=f"queue a command for a device ({names})")
    p.add_argument("device", help="the device id of the station file")
    p.add_argument("name", help=names)
    p.add_argument("params", nargs="*", help="key=value parameters of the command")
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("--user", required=True, help="a technician or admin (asks the password)")
    p.add_argument("--password-stdin", action="store_true", help="password from stdin")
    p.add_argument("--json", action="store_true", help="also print the queued command as JSON")
    p.set_defaults(func=cmd_command)
