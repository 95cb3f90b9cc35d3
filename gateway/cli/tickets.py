"""`stationgw tickets summary|export`: a warning's summary, the hazard ledger."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.cli.common import database_path, station_time
from gateway.tickets import ledger
from gateway.tickets.store import StationStore
from gateway.tickets.summary import render, summarize


def _open(args: argparse.Namespace) -> tuple[StationStore, str, dict[str, str]]:

    path, cfg = database_path(args)
    tz = cfg.station.timezone if cfg else "Asia/Shanghai"
    return StationStore(path, writer=False), tz, ledger.names_of(cfg) if cfg else {}


def cmd_summary(args: argparse.Namespace) -> int:
    store, tz, _ = _open(args)
    try:
        out = summarize(store, args.id)
    finally:
        store.close()
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    zone = ZoneInfo(tz)

    def fmt(ms: int | None) -> str:
        if ms is None:
            return "-"
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%m-%d %H:%M:%S")

    print(render(out, fmt))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store, tz, names = _open(args)
    start = station_time(args.from_, tz) if args.from_ else None
    end = station_time(args.to, tz) if args.to else None
    try:
        table = ledger.rows(store, start, end, time.time_ns() // 1_000_000, tz, names)
    finally:
        store.close()
    data = ledger.to_xlsx(table) if args.format == "xlsx" else ledger.to_csv(table)
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"{args.out}: {len(table)} tickets ({args.format})", file=sys.stderr)
    elif args.format == "xlsx" and sys.stdout.isatty():
        print("stationgw: xlsx to a terminal; use --out FILE", file=sys.stderr)
        return 2
    else:
        sys.stdout.buffer.write(data)
    return 0


def add_parsers(tsub: Any, db_options: Any) -> None:
    summary = tsub.add_parser("summary", help="a warning's calls, escalations and outcome")
    summary.add_argument("id", type=int)
    db_options(summary)
    summary.add_argument("--json", action="store_true", help="print JSON")
    summary.set_defaults(func=cmd_summary)

    export = tsub.add_parser("export", help="the hazard ledger (隐患台账) as CSV or XLSX")
    db_options(export)
    export.add_argument("--from", dest="from_", metavar="T", help="opened at or after")
    export.add_argument("--to", metavar="T", help="opened before")
    export.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    export.add_argument("--out", type=Path, metavar="PATH", help="file (default: stdout)")
    export.set_defaults(func=cmd_export)
