"""Rule plans pushed down to the stations (#19 item 4), on the county's side.

`stationgw county plan push -c county.toml [FILE] --target all|group.<g>|station.<st>
[--version V]`: the file is checked exactly as `stationgw rules check FILE` checks it
(the same parser; a station checks it again against its own devices before it runs it).
Every plan also carries what a station needs of the county (`county_part`): the
county's name, its `[[people]]` (grid `county`, the top of each station's calling
ladder) and its `[escalation]` deadlines — so a plan pushed without FILE re-sends the
rules of the target's last plan with the people and deadlines of the county file now.
The plan is given a version (by default the county's local time, `YYYYMMDD-HHMMSS`) and
its hash (gateway/core/plans.py), recorded in `plans` and put in the JetStream key-value
bucket `county_plans` under the target's key. A version names one content: pushing the
same version again with other rules, people or deadlines is refused.

`apply_plan_report(conn, cfg, msg)` is what the consumer calls for `county.<st>.plan`:
it stores which plan the station runs (or the errors it found), and refuses — for the
consumer to quarantine — a report from an unknown station or about a version the county
never sent that station.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from gateway.config.loop import CountyPart, county_part_problems
from gateway.core.errors import ConfigError, GatewayError
from gateway.core.plans import plan_hash
from gateway.county.config import CountyConfig
from rules.durations import format_duration
from rules.schema import parse_rules

BUCKET = "county_plans"
MAX_PLAN_BYTES = 1024 * 1024  # a key-value value; real plans are a few KiB


class PlanRefused(GatewayError):
    """A plan not published: every problem, as `stationgw rules check` says them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Plan:
    version: str
    target: str
    hash: str
    text: str
    county: dict[str, Any]

    def value(self) -> bytes:
        """The key-value value (gateway/county/__init__.py)."""
        body = {"version": self.version, "hash": self.hash, "rules": self.text}
        return json.dumps({**body, "county": self.county}, ensure_ascii=False).encode()


def county_part(cfg: CountyConfig) -> dict[str, Any]:
    """What a station needs of the county, as sent (gateway/config/loop.py CountyPart)."""
    e = cfg.escalation
    return {
        "name": cfg.county.name,
        "people": [
            {**p.model_dump(mode="json", exclude_defaults=True), "grid": "county"}
            for p in cfg.people
        ],
        "deadlines": {"blue": e.blue_s, "yellow": e.yellow_s, "orange": e.orange_s, "red": e.red_s},
    }


def check_county_part(part: dict[str, Any]) -> list[str]:
    """The county part checked as a station will check it (less the station's own people)."""
    from pydantic import ValidationError

    from gateway.core.validation import problems

    try:
        model = CountyPart.model_validate(part)
    except ValidationError as e:
        return [f"county.{p}" for p in problems(e)]
    return county_part_problems(model, [])


def check_rules(text: str, name: str) -> list[str]:
    """The problems `stationgw rules check FILE` would find (no station file)."""
    if len(text.encode("utf-8")) > MAX_PLAN_BYTES:
        return [f"{name}: larger than {MAX_PLAN_BYTES // 1024} KiB"]
    try:
        parse_rules(tomllib.loads(text), name)
    except tomllib.TOMLDecodeError as e:
        return [f"{name}: not valid TOML: {e}"]
    except ConfigError as e:
        return [f"{name}: {p}" for p in e.problems]
    except (RecursionError, ValueError) as e:
        return [f"{name}: not accepted: {e}"]
    return []


def check_target(cfg: CountyConfig, target: str) -> list[str]:
    kind, _, name = target.partition(".")
    if target == "all":
        return []
    if kind == "group" and name in {s.group for s in cfg.stations if s.group}:
        return []
    if kind == "station" and name in {s.id for s in cfg.stations}:
        return []
    groups = sorted({s.group for s in cfg.stations if s.group})
    return [
        f"--target {target!r}: all, group.<g> (groups: {', '.join(groups) or 'none'}) "
        "or station.<id> of a station in [[stations]]"
    ]


def make_plan(
    cfg: CountyConfig, text: str, target: str, version: str | None, now: int, name: str
) -> Plan:
    county = county_part(cfg)
    problems = check_target(cfg, target) + check_rules(text, name) + check_county_part(county)
    if version is not None and (
        not 0 < len(version) <= 64 or version.strip() != version or "/" in version
    ):
        problems.append(f"--version {version!r}: 1-64 characters, no spaces around")
    if problems:
        raise PlanRefused(problems)
    if version is None:
        local = datetime.fromtimestamp(now / 1000, UTC).astimezone(ZoneInfo(cfg.county.timezone))
        version = local.strftime("%Y%m%d-%H%M%S")
    return Plan(version, target, plan_hash(text, county), text, county)


def record(conn: Any, plan: Plan, by: str) -> bool:
    """The plan in `plans`; False if this version was recorded already with this text
    (a push again), PlanRefused if with another."""
    with conn.transaction():
        row = conn.execute(
            "SELECT hash, target FROM plans WHERE version = %s FOR UPDATE", (plan.version,)
        ).fetchone()
        if row is not None:
            if row[0] != plan.hash or row[1] != plan.target:
                raise PlanRefused(
                    [
                        f"version {plan.version!r} was pushed already with other rules, "
                        "people, deadlines or target"
                    ]
                )
            return False
        conn.execute(
            "INSERT INTO plans (version, target, hash, body, created_by) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                plan.version,
                plan.target,
                plan.hash,
                Jsonb({"rules": plan.text, "county": plan.county}),
                by,
            ),
        )
    return True


async def kv_bucket(js: Any, replicas: int) -> Any:
    """The bucket `county_plans`, made on first use (replicated like the stream)."""
    import nats.js.errors

    try:
        return await js.key_value(BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(bucket=BUCKET, history=10, replicas=replicas)


def key_of(target: str) -> str:
    return target  # all, group.<g>, station.<st>: the keys are the targets


async def publish(js: Any, conn: Any, plan: Plan, by: str, replicas: int = 1) -> int:
    """Record, then put; the key-value revision. A put that fails leaves the record, and
    pushing the same file and version again puts it (the record is found unchanged)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, record, conn, plan, by)
    kv = await kv_bucket(js, replicas)
    rev = int(await kv.put(key_of(plan.target), plan.value()))

    def note() -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE plans SET kv_revision = %s WHERE version = %s", (rev, plan.version)
            )

    await loop.run_in_executor(None, note)
    return rev


async def connect_nats(cfg: CountyConfig) -> Any:
    import ssl

    import nats

    n = cfg.nats
    opts: dict[str, Any] = {"servers": n.servers, "connect_timeout": 5, "max_reconnect_attempts": 3}
    if n.user is not None:
        opts["user"], opts["password"] = n.user, n.password
    if n.creds_file is not None:
        opts["user_credentials"] = str(n.creds_file)
    if n.ca_file is not None:
        opts["tls"] = ssl.create_default_context(cafile=str(n.ca_file))
    return await nats.connect(**opts)


async def push(
    cfg: CountyConfig, plan: Plan, by: str, connect: Callable[[], Any] | None = None
) -> int:
    """Publish a plan made by `make_plan` (the CLI, the page, the demo), over connections
    to the cluster and PostgreSQL made for this push (`connect`: the caller's store, by
    default `[postgres] dsn`); the key-value revision."""
    import psycopg

    dsn = cfg.postgres.dsn
    nc = await connect_nats(cfg)
    try:
        conn = await asyncio.to_thread(
            connect or (lambda: psycopg.connect(dsn, connect_timeout=10))
        )
        try:
            replicas = min(3, len(cfg.nats.servers))
            return await publish(nc.jetstream(), conn, plan, by, replicas=replicas)
        finally:
            conn.close()
    finally:
        await nc.close()


def last_rules(conn: Any, target: str) -> str:
    """The rules text of the newest plan pushed to `target` ("" if none)."""
    row = conn.execute(
        "SELECT body->>'rules' FROM plans WHERE target = %s "
        "ORDER BY created_at DESC, version DESC LIMIT 1",
        (target,),
    ).fetchone()
    return str(row[0]) if row and row[0] else ""


def cmd_plan_push(
    cfg: CountyConfig, file: Path | None, target: str, version: str | None, by: str = "cli"
) -> int:
    """`stationgw county plan push -c county.toml [FILE] --target T [--version V]`: 0 when
    published, 1 with every problem printed when refused. Without FILE the target's last
    rules go again, with the county file's people and deadlines as they are now."""
    import time

    import psycopg

    if file is None:
        name = f"the rules of the last plan for {target}"
        try:
            with psycopg.connect(cfg.postgres.dsn, connect_timeout=10) as conn:
                text = last_rules(conn, target)
        except psycopg.Error as e:
            print(f"postgres: {e}")
            return 1
    else:
        name = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            print(f"{file}: cannot read: {e}")
            return 1
    try:
        plan = make_plan(cfg, text, target, version, time.time_ns() // 1_000_000, name)
    except PlanRefused as e:
        for p in e.problems:
            print(p)
        print("plan not published")
        return 1

    try:
        rev = asyncio.run(push(cfg, plan, by))
    except PlanRefused as e:
        for p in e.problems:
            print(p)
        return 1
    print(f"plan {plan.version} ({plan.hash[:12]}) published to {target} (revision {rev})")
    rules = len(tomllib.loads(text).get("rules", [])) if text else 0
    print(f"  {rules} rules ({name}), {len(plan.county['people'])} county people, deadlines:")
    for level, s in plan.county["deadlines"].items():
        print(f"  {level}: {format_duration(s * 1000) if s else 'stays with the township'}")
    return 0


# --- what the stations say they run -----------------------------------------------------


def sent_to(cfg: CountyConfig, station: str, target: str) -> bool:
    group = next((s.group for s in cfg.stations if s.id == station), None)
    return target in ("all", f"station.{station}") or (
        group is not None and target == f"group.{group}"
    )


def apply_plan_report(conn: Any, cfg: CountyConfig, msg: Any) -> str | None:
    """Store a `county.<st>.plan` report in `stations` (plan_version, plan_hash,
    plan_errors, plan_at); None when stored, else why it is refused (quarantine it).
    An older report than the one stored changes nothing."""
    if not isinstance(msg, dict):
        return "not a JSON object"
    station, at = msg.get("station"), msg.get("at")
    if station not in {s.id for s in cfg.stations}:
        return f"station: unknown station {station!r}"
    if not isinstance(at, int) or isinstance(at, bool):
        return "at: missing or not an integer (ms)"
    version, digest, ok, errors = (
        msg.get("version"),
        msg.get("hash"),
        msg.get("ok"),
        msg.get("errors"),
    )
    if not isinstance(ok, bool):
        return "ok: missing or not true/false"
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        return "errors: not a list of texts"
    if version is not None:
        row = conn.execute(
            "SELECT hash, target FROM plans WHERE version = %s", (str(version),)
        ).fetchone()
        if row is None or not sent_to(cfg, str(station), str(row[1])):
            return f"version: plan {version!r} was never sent to {station}"
        if ok and digest != row[0]:
            return f"hash: station {station} runs plan {version!r} with another text"
    elif ok:
        return "version: missing"
    when = datetime.fromtimestamp(at / 1000, UTC)
    with conn.transaction():
        if ok:
            conn.execute(
                "INSERT INTO stations (id, plan_version, plan_hash, plan_errors, plan_at) "
                "VALUES (%s, %s, %s, NULL, %s) ON CONFLICT (id) DO UPDATE SET "
                "plan_version = EXCLUDED.plan_version, plan_hash = EXCLUDED.plan_hash, "
                "plan_errors = NULL, plan_at = EXCLUDED.plan_at "
                "WHERE stations.plan_at IS NULL OR stations.plan_at <= EXCLUDED.plan_at",
                (station, version, digest, when),
            )
        else:  # refused: the station runs what it ran; the errors are shown with it
            conn.execute(
                "INSERT INTO stations (id, plan_errors, plan_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET plan_errors = EXCLUDED.plan_errors, "
                "plan_at = EXCLUDED.plan_at "
                "WHERE stations.plan_at IS NULL OR stations.plan_at <= EXCLUDED.plan_at",
                (station, Jsonb([f"{version}: {e}" if version else e for e in errors]), when),
            )
    return None


def plans_running(conn: Any) -> list[dict[str, Any]]:
    """The plans pushed, newest first, with how many stations run each."""
    rows = conn.execute(
        "SELECT p.version, p.target, p.hash, p.created_by, p.created_at, "
        "(SELECT count(*) FROM stations s WHERE s.plan_version = p.version) "
        "FROM plans p ORDER BY p.created_at DESC LIMIT 50"
    ).fetchall()
    return [
        {
            "version": v,
            "target": t,
            "hash": h,
            "by": b,
            "at": int(c.timestamp() * 1000),
            "stations": int(n),
        }
        for v, t, h, b, c, n in rows
    ]
