"""`stationgw rules …`: check, test, replay and reload rules (the technician's tools)."""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config.station import Config, load_config, read_toml
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.model import Reading
from gateway.ingest.rules_loader import device_context, fault_specs, rule_files
from gateway.ingest.rules_service import describe
from gateway.storage import tiers
from rules.durations import parse_duration
from rules.evaluator import RuleSet
from rules.model import Rule
from rules.replay import replay, transition_json
from rules.schema import check_set, parse_rules
from rules.testing import diff, parse_test_file, run_case


def load_rule_path(path: Path, cfg: Config | None) -> tuple[Rule, ...]:
    """All rules of a file or folder; ConfigError listing every problem of every file."""
    devices = device_context(cfg) if cfg else None
    metrics = {m for d in cfg.devices for m in d.metrics} if cfg else None
    files: dict[str, tuple[Rule, ...]] = {}
    problems: list[str] = []
    targets = rule_files(path)
    if not targets or not all(p.exists() for p in targets):
        raise ConfigError(str(path), ["no rule files here"])
    if len(targets) == 1:
        return parse_rules(read_toml(targets[0]), str(targets[0]), devices=devices, metrics=metrics)
    for p in targets:
        try:
            files[str(p)] = parse_rules(read_toml(p), str(p), devices=devices, metrics=metrics)
        except ConfigError as e:
            problems += [f"{e.path}: {x}" for x in e.problems]
    problems += check_set(files)
    if problems:
        raise ConfigError("", problems)
    return tuple(r for rules in files.values() for r in rules)


def _config(args: argparse.Namespace) -> Config | None:
    return load_config(args.config) if getattr(args, "config", None) else None


def cmd_check(args: argparse.Namespace) -> int:
    rules = load_rule_path(args.path, _config(args))
    print(f"{'id':<22} {'kind':<13} {'metric':<12} {'scope':<16} levels")
    for r in rules:
        d = describe(r)
        scope = ",".join(d.get("devices", [])) or "all"
        if "windows" in d:
            levels = "; ".join(
                f"{w}: " + " ".join(f"{k}≥{v:g}" for k, v in lv.items())
                for w, lv in d["windows"].items()
            )
        elif "levels" in d:
            levels = " ".join(f"{k} {v:g}" for k, v in d["levels"].items())
        else:
            levels = "-"
        print(f"{r.id:<22} {r.kind:<13} {d.get('metric', '-'):<12} {scope[:16]:<16} {levels}")
    print(f"({len(rules)} rules ok)")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    failed = 0
    total = 0
    for path in args.files:
        spec = parse_test_file(read_toml(path), str(path))
        rule_paths = [(path.parent / p) for p in spec.rules]
        files: dict[str, tuple[Rule, ...]] = {}
        for p in rule_paths:
            files[str(p)] = parse_rules(read_toml(p), str(p))
        across = check_set(files)
        if across:
            raise ConfigError(str(path), across)
        rules = tuple(r for rs in files.values() for r in rs)
        for case in spec.tests:
            total += 1
            result = run_case(case, rules, spec)
            if result.passed:
                print(f"PASS  {path}: {case.name}")
            else:
                failed += 1
                print(f"FAIL  {path}: {case.name}")
                for line in diff(result):
                    print(line)
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


def parse_time(text: str) -> int:
    """Epoch milliseconds, or ISO 8601 with an offset (a date alone is UTC midnight)."""
    if text.isdigit():
        return int(text)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        if "T" in text or " " in text:
            raise ValueError(f"{text!r}: give the time zone (e.g. +08:00 or Z)")
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def csv_history(path: Path) -> Iterator[Reading]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"ts", "device", "metric", "value"} <= set(
            reader.fieldnames
        ):
            raise GatewayError(f"{path}: the header must name ts, device, metric, value")
        for line, row in enumerate(reader, start=2):
            try:
                yield Reading(
                    row["device"], row["metric"], parse_time(row["ts"]), float(row["value"])
                )
            except (ValueError, TypeError) as e:
                raise GatewayError(f"{path}:{line}: {e}") from None


def db_history(path: Path, start: int, end: int) -> Iterator[Reading]:
    """Every series' readings in [start, end), raw rows and compacted chunks, by time."""
    if not path.exists():
        raise GatewayError(f"{path}: no station database here")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        per_series = [
            [Reading(d, m, ts, v) for ts, v, _ in tiers.read(conn, sid, start, end, 2**62)]
            for sid, d, m in conn.execute("SELECT id, device, metric FROM series").fetchall()
        ]
    finally:
        conn.close()
    yield from heapq.merge(*per_series, key=lambda r: r.ts)


def cmd_replay(args: argparse.Namespace) -> int:
    cfg = _config(args)
    rules = load_rule_path(args.rules, cfg)
    start = parse_time(args.from_) if args.from_ else 0
    end = parse_time(args.to) if args.to else 2**62
    if args.csv:
        history = [r for r in csv_history(args.csv) if start <= r.ts < end]
    else:
        history = list(db_history(args.db, start, end))
    ruleset = RuleSet(
        rules,
        device_context(cfg) if cfg else None,
        fault_specs(cfg) if cfg else None,
        parse_duration(cfg.rules.lateness) if cfg else 3_600_000,
    )
    tz = ZoneInfo(cfg.station.timezone) if cfg else UTC
    count = 0
    for t in replay(ruleset, history):
        count += 1
        if args.json:
            print(json.dumps(transition_json(t), ensure_ascii=False))
        else:
            when = datetime.fromtimestamp(t.at / 1000, tz).isoformat(timespec="seconds")
            where = t.device or f"@{t.point}"
            change = (
                f"{t.previous.label if t.previous else 'none'} -> "
                f"{t.level.label if t.level else 'none'}"
                if t.kind == "hazard"
                else ("fault on" if t.active else "fault off")
            )
            print(f"{when}  {where:<10} {t.metric:<10} {t.rule:<18} {change:<16} {t.reason_zh}")
    if not args.json:
        print(f"({len(history)} readings replayed, {count} transitions)", file=sys.stderr)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    host = "127.0.0.1" if cfg.http.host in ("0.0.0.0", "::") else cfg.http.host
    from gateway.cli.users import login, read_password

    call = login(f"http://{host}:{cfg.http.port}", args.user, read_password(args))
    answer = call("POST", "/api/rules/reload")
    changed = answer.get("changed") or []
    print(
        f"reloaded: {', '.join(changed) if changed else 'nothing changed'}; "
        f"{len(answer.get('rules', []))} rules running"
    )
    for name, found in (answer.get("errors") or {}).items():
        for problem in found:
            print(f"{name}: {problem}", file=sys.stderr)
    return 2 if answer.get("errors") else 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="check, test, replay and reload rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True)

    check = rsub.add_parser("check", help="validate rule files and print them as a table")
    check.add_argument("path", type=Path, help="a rules file or a folder of them")
    check.add_argument("-c", "--config", type=Path, help="station file: devices for scopes")
    check.set_defaults(func=cmd_check)

    test = rsub.add_parser("test", help="run rule unit-test files")
    test.add_argument("files", type=Path, nargs="+")
    test.set_defaults(func=cmd_test)

    rep = rsub.add_parser("replay", help="run rules over stored history or a CSV file")
    rep.add_argument("--rules", type=Path, required=True, help="a rules file or folder")
    src = rep.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", type=Path, help="a station database")
    src.add_argument("--csv", type=Path, help="columns ts,device,metric,value")
    rep.add_argument("--from", dest="from_", metavar="T", help="ISO 8601 or epoch ms")
    rep.add_argument("--to", metavar="T", help="ISO 8601 or epoch ms (exclusive)")
    rep.add_argument("--json", action="store_true", help="one JSON object per line")
    rep.add_argument("-c", "--config", type=Path, help="station file: devices, fault settings")
    rep.set_defaults(func=cmd_replay)

    reload = rsub.add_parser("reload", help="ask the running gateway to reload its rules")
    reload.add_argument("-c", "--config", type=Path, required=True)
    reload.add_argument("--user", required=True, help="a technician or admin (asks the password)")
    reload.add_argument("--password-stdin", action="store_true", help="password from stdin")
    reload.set_defaults(func=cmd_reload)
