"""`POST /api/devices/{id}/commands` (technicians and admins) and the device's command list.

A command is checked by its driver before it is queued: an unknown device, an unknown
command or a parameter out of range is a 4xx naming what is wrong, and nothing is queued.
The queue (gateway/storage/commands.py) sends it after the device's next report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from drivers.link.commands import CommandError
from drivers.registry import PROTOCOLS
from gateway.auth.policy import RULES_ROLES
from gateway.core import clock
from gateway.storage import commands as queue
from gateway.tickets.store import StationStore

if TYPE_CHECKING:
    from gateway.http.app import Context
    from gateway.http.auth import Access

TTL_MS = 24 * 3_600_000  # a command not answered within a day expires
TIMEOUT_MS = 120_000  # sent and unanswered this long: sent again after the next report
MAX_ATTEMPTS = 3


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40)
    args: dict[str, str] = Field(default_factory=dict, max_length=40)


def _json(c: queue.QueuedCommand) -> dict[str, Any]:
    return {
        "id": c.id,
        "device": c.device,
        "name": c.name,
        "args": c.args,
        "state": c.state,
        "attempts": c.attempts,
        "by": c.created_by,
        "answer": c.answer,
    }


def check(ctx: Context, device_id: str, body: CommandBody, now: int) -> None:
    """Raise HTTPException (404/400) naming what is wrong; return when the command is good."""
    device = next((d for d in ctx.config.devices if d.id == device_id), None)
    if device is None:
        raise HTTPException(404, f"设备 {device_id} 不存在 (device {device_id} does not exist)")
    commands = PROTOCOLS[device.transport.kind].command_set()
    if commands is None:
        raise HTTPException(
            400,
            f"{device.name}: 该设备的协议 ({device.transport.kind}) 不支持下发命令 "
            f"(devices speaking {device.transport.kind} take no commands)",
        )
    try:
        commands.check(body.name, body.args, device.transport, now)
    except CommandError as e:
        raise HTTPException(400, f"{device.name}: {e}") from None


def add_routes(
    app: FastAPI, ctx: Context, reader: Callable[[], StationStore], access: Access
) -> None:
    @app.post("/api/devices/{device_id}/commands", status_code=202)
    async def send_command(request: Request, device_id: str, body: CommandBody) -> dict[str, Any]:
        """Queue a command for a device; it goes out after the device's next report."""
        user = access.require(request, RULES_ROLES, "send commands to devices")
        now = clock.now_ms()
        check(ctx, device_id, body, now)
        source = request.client.host if request.client else "?"

        def write() -> queue.QueuedCommand:
            with ctx.writer_store.transaction():
                return enqueue()

        def enqueue() -> queue.QueuedCommand:
            return queue.enqueue(
                ctx.writer_store,
                now,
                device=device_id,
                name=body.name,
                args=body.args,
                user=user.name,
                ttl_ms=TTL_MS,
                timeout_ms=TIMEOUT_MS,
                max_attempts=MAX_ATTEMPTS,
                source=source,
            )

        c = await asyncio.get_running_loop().run_in_executor(ctx.writer, write)
        return _json(c)

    @app.get("/api/devices/{device_id}/commands")
    def list_commands(device_id: str) -> list[dict[str, Any]]:
        """The device's commands, newest first, with their state and answer."""
        return [_json(c) for c in queue.listing(reader(), device_id)]
