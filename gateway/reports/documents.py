"""The reports as documents (bytes of HTML, PDF, CSV or XLSX), shared by the command line
and the HTTP API: open the database read-only, compute, render, print."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.config.station import Config
from gateway.ingest.rules_loader import RulesLoader
from gateway.reports.handover import handover
from gateway.reports.monthly import Monthly, monthly
from gateway.reports.pdf import html_to_pdf
from gateway.reports.period import month_period
from gateway.reports.render import handover_html, ledger_html, monthly_html
from gateway.tickets import ledger
from gateway.tickets.store import StationStore
from rules.evaluator import RuleSet

log = logging.getLogger("stationgw.reports")

Format = Literal["html", "pdf"]
MEDIA = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True, slots=True)
class Document:
    name: str  # a file name for it: monthly-qingshui-2026-07.pdf
    media_type: str
    data: bytes


def open_db(path: Path) -> sqlite3.Connection:
    """A read-only connection (the report never writes)."""
    return StationStore(path, writer=False).conn


def ruleset_of(cfg: Config) -> RuleSet | None:
    """The station's rules, for rule names and water-level lines; files with errors are
    left out (and logged), as the running gateway does."""
    if cfg.rules.path is None:
        return None
    loader = RulesLoader(cfg)
    loader.load()
    for name, problems in loader.errors.items():
        log.warning("report: rules file %s left out: %s", name, "; ".join(problems))
    return loader.ruleset()


def _finish(html: str, fmt: Format, name: str) -> Document:
    if fmt == "pdf":
        return Document(f"{name}.pdf", MEDIA["pdf"], html_to_pdf(html))
    return Document(f"{name}.html", MEDIA["html"], html.encode("utf-8"))


def monthly_figures(conn: sqlite3.Connection, cfg: Config, month: str, now: int) -> Monthly:
    period = month_period(month, cfg.station.timezone)
    return monthly(conn, cfg, period, now, ruleset_of(cfg), cfg.reports)


def monthly_document(
    conn: sqlite3.Connection, cfg: Config, month: str, fmt: Format, now: int
) -> Document:
    m = monthly_figures(conn, cfg, month, now)
    return _finish(monthly_html(m, cfg), fmt, f"monthly-{cfg.station.id}-{m.period.key}")


def handover_document(
    conn: sqlite3.Connection, cfg: Config, handover_id: int | None, fmt: Format
) -> Document:
    h = handover(conn, cfg, handover_id)
    return _finish(handover_html(h, cfg), fmt, f"handover-{cfg.station.id}-{h.id}")


def ledger_document(
    store: StationStore,
    cfg: Config | None,
    start: int | None,
    end: int | None,
    span: str,
    fmt: Literal["csv", "xlsx", "html", "pdf"],
    now: int,
) -> Document:
    tz = cfg.station.timezone if cfg else "Asia/Shanghai"
    table = ledger.rows(store, start, end, now, tz, ledger.names_of(cfg) if cfg else {})
    name = f"ledger-{cfg.station.id if cfg else 'station'}"
    if fmt == "csv":
        return Document(f"{name}.csv", MEDIA["csv"], ledger.to_csv(table))
    if fmt == "xlsx":
        return Document(f"{name}.xlsx", MEDIA["xlsx"], ledger.to_xlsx(table))
    if cfg is None:
        raise ValueError("the ledger as HTML or PDF needs the station file (-c FILE)")
    return _finish(ledger_html(table, ledger.HEADERS, cfg, span), fmt, name)
