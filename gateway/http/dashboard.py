"""HTTP routes the duty-room page needs beyond the data API: its settings (station,
points on the risk map, thresholds), the map background, muting a warning's alarm
with a reason, and the technician's rule files: read, check, save, replay."""

from __future__ import annotations

import asyncio
import json
import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth.policy import ACK_ROLES, RULES_ROLES
from gateway.auth.users import muted_alarms
from gateway.config.dashboard import MAP_TYPES
from gateway.core.errors import ConfigError, GatewayError
from gateway.http.params import RowId
from gateway.ingest.rules_loader import device_context, fault_specs, rule_files
from gateway.ingest.rules_service import describe
from gateway.tickets.store import StationStore
from rules.durations import parse_duration
from rules.evaluator import RuleSet
from rules.replay import replay
from rules.schema import parse_rules

if TYPE_CHECKING:
    from gateway.http.app import Context
    from gateway.http.auth import Access

FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,80}\.toml$")
MAX_RULE_FILE = 200_000  # characters
MAX_REPLAY_DAYS = 31


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MuteBody(_Body):
    reason: str = Field(min_length=1, max_length=500)


class RuleText(_Body):
    text: str = Field(max_length=MAX_RULE_FILE)


class ReplayBody(_Body):
    text: str | None = Field(default=None, max_length=MAX_RULE_FILE)  # None: rules running
    device: str = Field(min_length=1, max_length=64)
    start: int = Field(alias="from")
    to: int


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _pick(detail: str | None) -> dict[str, Any]:
    d = json.loads(detail or "{}")
    return {"reason": d.get("reason"), "level": d.get("level")}


def add_routes(
    app: FastAPI, ctx: Context, reader: Callable[[], StationStore], access: Access
) -> None:
    cfg = ctx.config
    folder: Path | None = None
    if cfg.rules.path is not None:
        folder = cfg.rules.path if cfg.rules.path.is_dir() else cfg.rules.path.parent

    @app.get("/api/dashboard")
    def dashboard() -> dict[str, Any]:
        """What the page draws with: station, points with map positions, devices' metrics
        and the thresholds of the rules running over them."""
        m = cfg.dashboard.map
        return {
            "station": {
                "id": cfg.station.id,
                "name": cfg.station.name,
                "timezone": cfg.station.timezone,
            },
            "alarm_repeat_s": cfg.dashboard.alarm_repeat_s,
            "map": {
                "background": "/api/map/background" if m.background else None,
                "bounds": list(m.bounds) if m.bounds else None,
                "layers": [
                    {
                        "name": x.name,
                        "kind": x.kind,
                        "color": x.color,
                        "visible": x.visible,
                        "url": f"/api/map/layers/{i}",
                    }
                    for i, x in enumerate(m.layers)
                ],
            },
            "villages": {v.id: v.name for v in cfg.villages},
            "points": [
                {"id": p.id, "name": p.name, "village": p.village, "lon": p.lon, "lat": p.lat}
                for p in cfg.points
            ],
            "devices": [
                {
                    "id": d.id,
                    "name": d.name,
                    "kind": d.kind,
                    "point": d.point,
                    "metrics": {k: {"unit": s.unit, "name": s.name} for k, s in d.metrics.items()},
                }
                for d in cfg.devices
            ],
            "rules": ctx.rules.status()["rules"],
        }

    @app.get("/api/map/background")
    def background() -> FileResponse:
        bg = cfg.dashboard.map.background
        if bg is None:
            raise HTTPException(404, "no map background configured ([dashboard.map])")
        return FileResponse(bg, media_type=MAP_TYPES[bg.suffix.lower()])

    @app.get("/api/map/layers/{index}")
    def layer(index: int) -> FileResponse:
        """One GeoJSON layer of the offline basemap (nothing comes from the internet)."""
        layers = cfg.dashboard.map.layers
        if not 0 <= index < len(layers):
            raise HTTPException(404, f"no map layer {index}")
        return FileResponse(layers[index].file, media_type="application/geo+json")

    @app.get("/api/alarms/muted")
    def muted() -> dict[str, Any]:
        """Warnings whose alarm someone muted, with who and why (from the audit log)."""
        rows = muted_alarms(reader())
        return {"muted": [{"ticket": int(t), "by": u, "at": a} | _pick(d) for t, u, d, a in rows]}

    @app.post("/api/alarms/{ticket_id}/mute")
    def mute(request: Request, ticket_id: RowId, body: MuteBody) -> dict[str, Any]:
        """Mute one warning's alarm on every screen at its present level (a raise sounds
        again); a reason is required (audited)."""
        user = access.require(request, ACK_ROLES, "mute an alarm")
        t = reader().ticket(ticket_id)
        if t is None:
            raise HTTPException(404, f"ticket {ticket_id} does not exist")
        level = t.level.label if t.level else None
        access.record(
            request, "alarm.mute", str(ticket_id), {"reason": body.reason, "level": level}
        )
        out = {"ticket": ticket_id, "by": user.name, "reason": body.reason, "level": level}
        ctx.hub.publish("mute", out)
        return out

    # --- rule files (technician) --------------------------------------------------------

    def need_folder() -> Path:
        if folder is None:
            raise HTTPException(409, "this station has no [rules] path")
        return folder

    def named(name: str) -> Path:
        if not FILE_NAME.match(name):
            raise HTTPException(422, f"{name!r}: a file name like flood.toml")
        return need_folder() / name

    def check(name: str, text: str) -> tuple[list[str], list[Any]]:
        """(problems, rules) of a rules file's text, the way the gateway would load it."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            return [f"TOML: {e}"], []
        try:
            rules = parse_rules(
                data,
                name,
                devices=device_context(cfg),
                metrics={m for d in cfg.devices for m in d.metrics},
            )
        except ConfigError as e:
            return list(e.problems), []
        return [], [describe(r) for r in rules]

    @app.get("/api/rules/files")
    def files(request: Request) -> dict[str, Any]:
        access.require(request, RULES_ROLES, "read rule files")
        if cfg.rules.path is None:
            return {"files": []}
        return {
            "files": [
                {"name": p.name, "text": p.read_text(encoding="utf-8")}
                for p in rule_files(cfg.rules.path)
                if p.is_file()
            ]
        }

    @app.post("/api/rules/check")
    def check_text(request: Request, body: RuleText) -> dict[str, Any]:
        """Validate a rules file's text without saving it: the problems, line by line."""
        access.require(request, RULES_ROLES, "check rules")
        problems, rules = check("(edited)", body.text)
        return {"ok": not problems, "errors": problems, "rules": rules}

    @app.put("/api/rules/files/{name}")
    async def save(request: Request, name: str, body: RuleText) -> dict[str, Any]:
        """Save a rules file after it validates, then reload; 422 with its problems."""
        access.require(request, RULES_ROLES, "change rules")
        path = named(name)
        if cfg.rules.path is not None and cfg.rules.path.is_file() and path != cfg.rules.path:
            raise HTTPException(409, f"the station reads one rules file: {cfg.rules.path.name}")
        problems, _ = check(name, body.text)
        if problems:
            access.record(request, "rules.save", name, {"errors": problems}, ok=False)
            raise HTTPException(422, {"why": "invalid", "errors": problems})
        tmp = path.with_suffix(".toml.part")
        await asyncio.to_thread(tmp.write_text, body.text, "utf-8")
        tmp.replace(path)
        access.record(request, "rules.save", name, {"chars": len(body.text)})
        return await ctx.rules.reload(f"saved {name} from the page")

    @app.post("/api/rules/replay")
    async def replay_rules(request: Request, body: ReplayBody) -> dict[str, Any]:
        """Run rules (the edited text, or the running ones) over a device's stored
        history; answers the would-have-been transitions. Nothing is written."""
        access.require(request, RULES_ROLES, "replay rules")
        if not 0 < body.to - body.start <= MAX_REPLAY_DAYS * 86_400_000:
            raise HTTPException(422, f"a period of at most {MAX_REPLAY_DAYS} days")
        if body.text is not None:
            problems, _ = check("(edited)", body.text)
            if problems:
                raise HTTPException(422, {"why": "invalid", "errors": problems})
            rules = parse_rules(
                tomllib.loads(body.text),
                "(edited)",
                devices=device_context(cfg),
                metrics={m for d in cfg.devices for m in d.metrics},
            )
        else:
            rules = ctx.rules.loader.ruleset().rules
        device = cfg.device(body.device)
        if device is None:
            raise HTTPException(404, f"no device {body.device!r}")

        def run() -> list[dict[str, Any]]:
            from gateway.core.model import Reading
            from rules.replay import transition_json

            store = reader()
            history = [
                Reading(body.device, m, ts, v)
                for m in device.metrics
                for ts, v, flags in store.readings(body.device, m, body.start, body.to, 200_000)
                if not flags
            ]
            ruleset = RuleSet(
                tuple(rules),
                device_context(cfg),
                fault_specs(cfg),
                parse_duration(cfg.rules.lateness),
            )
            out = []
            for t in replay(ruleset, history):
                j = transition_json(t)
                j["at"] = t.at
                out.append(j)
            return out

        try:
            transitions = await asyncio.to_thread(run)
        except GatewayError as e:
            raise HTTPException(422, str(e)) from None
        access.record(request, "rules.replay", body.device, {"transitions": len(transitions)})
        return {"transitions": transitions}
