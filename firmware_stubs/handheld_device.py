"""A simulated handheld inspection recorder: patrol records over MQTT and via its dock.

Records keep the recorder's own ids and times; while offline they pile up and go out
later as one batch, and some are sent again (over MQTT and from the dock). Faults:
`garbage` (a payload or line that is no record), `unknown_checklist`.
"""

from __future__ import annotations

import json
import os
from typing import Any


def record(
    n: int,
    at_ms: int,
    *,
    by: str = "张三",
    point: str = "xiaxi-slope",
    checklist: str | None = "slope-daily",
    results: dict[str, str] | None = None,
    hazard: tuple[str, str] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    items = results if results is not None else {"cracks": "ok", "drainage": "ok", "signs": "ok"}
    r: dict[str, Any] = {
        "id": f"HH01-{n:06d}",
        "by": by,
        "point": point,
        "at": at_ms,
        "items": [{"item": k, "result": v} for k, v in items.items()],
    }
    if checklist is not None:
        r["checklist"] = checklist
    if text is not None:
        r["text"] = text
    if hazard is not None:
        r["hazard"] = {"level": hazard[0], "title": hazard[1]}
        r["photo"] = f"IMG_{n:04d}.jpg"
    return r


def mqtt_payload(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode()


def dock_lines(records: list[dict[str, Any]], garbage: bool = False) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if garbage:
        lines.insert(len(lines) // 2, '{"id": "HH01-broken", "by": ')
    return ("\n".join(lines) + "\nEND\n").encode()


def dock_send(path: str, data: bytes, reply_wait_s: float = 20.0) -> str:
    """Write a batch to the dock's serial line; return the gateway's `OK <n>` line."""
    import select

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, data)
        got = b""
        while not got.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], reply_wait_s)
            if not ready:
                raise TimeoutError("the dock got no answer")
            got += os.read(fd, 100)
        return got.decode().strip()
    finally:
        os.close(fd)
