"""The `stationgw` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.cli.common import DEFAULT_DATA, database_path, db_options
from gateway.cli.report import add_parser as add_report_parser
from gateway.cli.rules import add_parser as add_rules_parser
from gateway.config.station import load_config
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.logs import setup_logging


def _run(main: Coroutine[Any, Any, None], stop: asyncio.Event, duration: float | None) -> None:
    async def wrapper() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        await main

    asyncio.run(wrapper())


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.devtools.demo import run_demo

    stop = asyncio.Event()
    _run(run_demo(args.data, args.http_port, stop), stop, args.for_)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import run_gateway

    cfg = load_config(args.config)
    stop = asyncio.Event()
    _run(run_gateway(cfg, stop, freeze_heap=True), stop, None)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.ingest.rules_loader import RulesLoader

    cfg = load_config(args.config)
    loader = RulesLoader(cfg)
    loader.load()
    if loader.errors:
        for name, found in loader.errors.items():
            for problem in found:
                print(f"{name}: {problem}", file=sys.stderr)
        return 2
    rules = loader.ruleset().rules
    metrics = sum(len(d.metrics) for d in cfg.devices)
    print(
        f"{args.config}: ok — station {cfg.station.id} ({cfg.station.name}), "
        f"{len(cfg.villages)} villages, {len(cfg.points)} monitoring points, "
        f"{len(cfg.devices)} devices, {metrics} metrics, {len(rules)} rules, "
        f"{len(cfg.people)} people, {len(cfg.duty)} shifts, "
        f"broker {cfg.broker.host}:{cfg.broker.port}, database {cfg.database.path}"
    )
    return 0


def cmd_tickets_list(args: argparse.Namespace) -> int:
    from gateway.tickets.store import StationStore

    path, cfg = database_path(args)
    store = StationStore(path, writer=False)
    try:
        tickets = store.tickets(open_only=args.open)
    finally:
        store.close()
    if args.json:
        print(json.dumps([t.to_json() for t in tickets], ensure_ascii=False, indent=2))
        return 0
    tz = ZoneInfo(cfg.station.timezone if cfg else "Asia/Shanghai")

    def local(ms: int | None) -> str:
        if ms is None:
            return "-"
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    print(f"{'id':>4}  {'level':<6} {'state':<10} {'opened':<19}  {'device/metric':<20} title")
    for t in tickets:
        ack = f"  acknowledged by {t.acknowledged_by}" if t.acknowledged_by else ""
        level = t.level.label if t.level else "fault" if t.kind == "device_fault" else "-"
        print(
            f"{t.id:>4}  {level:<6} {t.state:<10} {local(t.opened_at)}  "
            f"{f'{t.device}/{t.metric}' if t.device else f'@{t.point}':<20} {t.title}{ack}"
        )
    print(f"({len(tickets)} tickets; times in {tz.key})")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from drivers.registry import TEXT_DECODERS as TEXT_PROTOCOLS
    from gateway.cli.decode import DecodeError, decode, parse_hex, parse_text

    text = sys.stdin.read() if args.frame == "-" else args.frame
    try:
        data = parse_text(text) if args.protocol in TEXT_PROTOCOLS else parse_hex(text)
        out = decode(args.protocol, data, ZoneInfo(args.tz))
    except DecodeError as e:
        print(
            json.dumps(
                {"protocol": args.protocol, "error": e.reason, "offset": e.offset},
                ensure_ascii=False,
            )
        )
        print(f"stationgw decode: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gateway.devtools.bench.runner import run_bench

    return run_bench(
        quick=args.quick,
        json_path=args.json,
        scale=args.scale,
        peer=not args.no_peer,
        keep=args.keep,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stationgw", description=__doc__)
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="broker, gateway, simulated devices and page in one go")
    demo.add_argument("--for", dest="for_", type=float, metavar="SECONDS", help="stop after")
    demo.add_argument("--http-port", type=int, default=8080, metavar="PORT")
    demo.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help=f"where the SQLite database lives (default: ./{DEFAULT_DATA})",
    )
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run the gateway of a station file")
    run.add_argument("-c", "--config", type=Path, required=True)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a station file and its rules")
    check.add_argument("-c", "--config", type=Path, required=True)
    check.set_defaults(func=cmd_check)

    add_rules_parser(sub)
    from gateway.cli.county import add_parser as add_county_parser

    add_county_parser(sub)
    from gateway.cli.command import add_parser as add_command_parser

    add_command_parser(sub)
    add_report_parser(sub)

    bench = sub.add_parser("bench", help="measure the gateway beside the broker and bare MQTT")
    bench.add_argument("--quick", action="store_true", help="small sizes: within 3 minutes")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    bench.add_argument("--scale", type=float, default=1.0, help="multiply the sizes (tests)")
    bench.add_argument("--no-peer", action="store_true", help="skip the Node-RED peer")
    bench.add_argument("--keep", type=Path, metavar="DIR", help="keep the bench's files in DIR")
    bench.set_defaults(func=cmd_bench)

    tickets = sub.add_parser("tickets", help="hazard tickets")
    tsub = tickets.add_subparsers(dest="tickets_command", required=True)
    tlist = tsub.add_parser("list", help="list tickets, newest first")
    db_options(tlist)
    tlist.add_argument("--json", action="store_true", help="print JSON")
    tlist.add_argument("--open", action="store_true", help="only tickets not closed")
    tlist.set_defaults(func=cmd_tickets_list)
    from gateway.cli.tickets import add_parsers as add_ticket_parsers

    add_ticket_parsers(tsub, db_options)
    from gateway.cli.users import add_parser as add_users_parser

    add_users_parser(sub, db_options)

    from gateway.cli.storage import add_parsers as add_storage_parsers  # backup/restore/export

    add_storage_parsers(sub, db_options)

    from gateway.cli.decode import PROTOCOLS

    dec = sub.add_parser("decode", help="decode one frame of a field protocol to JSON")
    dec.add_argument("protocol", choices=PROTOCOLS)
    dec.add_argument(
        "frame",
        metavar="HEX",
        help="the frame in hex (hj212: its text), or - to read it from stdin",
    )
    dec.add_argument("--tz", default="Asia/Shanghai", help="zone of the frame's clock")
    dec.set_defaults(func=cmd_decode)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(json_lines=args.log_json, level=10 if args.verbose else 20)
    try:
        code: int = args.func(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    except ValueError as e:  # a malformed argument, e.g. a time
        print(f"stationgw: {e}", file=sys.stderr)
        return 2
    except GatewayError as e:
        print(f"stationgw: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `… | head`: the reader has gone; nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout must stay open at exit
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
