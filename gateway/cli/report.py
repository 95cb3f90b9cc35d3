"""`stationgw report monthly|handover|ledger`: the township's documents from a station's
database, as HTML or PDF (the ledger also as CSV or XLSX)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from gateway.cli.common import DB_NAME, DEFAULT_DATA, station_time, stored_config
from gateway.config.station import Config, load_config
from gateway.reports import documents
from gateway.tickets.store import StationStore


def _options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        type=Path,
        help="the station file (names, grid, time zone, intervals, rules); default: the "
        "one the gateway stored in the database",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", type=Path, help="data folder holding station.db")
    g.add_argument("--db", type=Path, help="path of the station database")
    p.add_argument(
        "--out", type=Path, metavar="PATH", help="file to write (default: a name in ./; - stdout)"
    )


def _config(args: argparse.Namespace) -> Config:
    """-c's station file, else the one stored in the database (--data / --db)."""
    if args.config:
        return load_config(args.config)
    cfg = stored_config(_db(args, None))
    if cfg is None:
        raise ValueError(
            f"{_db(args, None)} holds no station file (a gateway before issue 17 ran it): give -c"
        )
    return cfg


def _db(args: argparse.Namespace, cfg: Config | None) -> Path:

    if args.db:
        return Path(args.db)
    if args.data:
        return Path(args.data) / DB_NAME
    if cfg is not None:
        return cfg.database.path
    return DEFAULT_DATA / DB_NAME


def _write(doc: documents.Document, out: Path | None) -> int:
    if out is not None and str(out) == "-":
        sys.stdout.buffer.write(doc.data)
        sys.stdout.flush()
        return 0
    path = out or Path(doc.name)
    path.write_bytes(doc.data)
    print(f"{path}: {len(doc.data):,} bytes ({doc.media_type.split(';')[0]})", file=sys.stderr)
    return 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def cmd_monthly(args: argparse.Namespace) -> int:
    cfg = _config(args)
    conn = documents.open_db(_db(args, cfg))
    try:
        doc = documents.monthly_document(conn, cfg, args.month, args.format, now_ms())
    finally:
        conn.close()
    return _write(doc, args.out)


def cmd_handover(args: argparse.Namespace) -> int:
    cfg = _config(args)
    conn = documents.open_db(_db(args, cfg))
    try:
        doc = documents.handover_document(conn, cfg, args.id, args.format)
    finally:
        conn.close()
    return _write(doc, args.out)


def cmd_ledger(args: argparse.Namespace) -> int:

    cfg = load_config(args.config) if args.config else stored_config(_db(args, None))
    tz = cfg.station.timezone if cfg else "Asia/Shanghai"
    start, end = station_time(args.from_, tz), station_time(args.to, tz)
    if end <= start:
        raise ValueError(f"--to {args.to} is not after --from {args.from_}")
    store = StationStore(_db(args, cfg), writer=False)
    try:
        doc = documents.ledger_document(
            store, cfg, start, end, f"{args.from_} 至 {args.to}", args.format, now_ms()
        )
    finally:
        store.close()
    return _write(doc, args.out)


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="monthly report, shift handover, hazard ledger")
    rsub = report.add_subparsers(dest="report_command", required=True)

    m = rsub.add_parser("monthly", help="the monthly safety situation report (月度安全形势分析)")
    m.add_argument("--month", required=True, metavar="YYYY-MM", help="station-time month")
    m.add_argument("--format", choices=["html", "pdf"], default="pdf")
    _options(m)
    m.set_defaults(func=cmd_monthly)

    h = rsub.add_parser("handover", help="a shift handover record (交接班记录)")
    h.add_argument("--id", type=int, help="the handover's id (default: the latest)")
    h.add_argument("--format", choices=["html", "pdf"], default="pdf")
    _options(h)
    h.set_defaults(func=cmd_handover)

    led = rsub.add_parser("ledger", help="the hazard ledger (隐患台账) for a date range")
    led.add_argument(
        "--from", dest="from_", required=True, metavar="DATE", help="opened at or after"
    )
    led.add_argument("--to", required=True, metavar="DATE", help="opened before")
    led.add_argument("--format", choices=["csv", "xlsx", "html", "pdf"], default="pdf")
    _options(led)
    led.set_defaults(func=cmd_ledger)
