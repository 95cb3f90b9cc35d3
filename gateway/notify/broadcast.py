"""Village broadcast (村村响 / 大喇叭): the warning text, or an audio clip's name, to a
village broadcast controller as an HTTP JSON request built from the station file's
template. Placeholders are replaced by JSON-escaped values (a quote in a point's name
cannot break the request); the result must be valid JSON, else the attempt fails with
the reason. Every announcement is a delivery and an attempt row, and a ticket event
(`broadcast`) written when it was decided: audited. Sirens named by a broadcaster are
sounded through the siren channel in the same round.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config.loop import Broadcast
from gateway.notify.base import Delivery, DeliveryError


def fill(template: str, values: Mapping[str, Any]) -> bytes:
    """The request body: each `{name}` inside the template's strings replaced by the
    value, escaped for a JSON string (pure)."""
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", json.dumps(str(v), ensure_ascii=False)[1:-1])
    try:
        json.loads(out)
    except ValueError as e:
        raise DeliveryError(f"broadcast body template is not JSON after filling: {e}") from e
    return out.encode()


class BroadcastChannel:
    name = "broadcast"

    def __init__(self, broadcasts: Sequence[Broadcast]) -> None:
        self.by_id = {b.id: b for b in broadcasts}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, d: Delivery) -> str | None:
        b = self.by_id.get(d.target)
        if b is None:
            raise DeliveryError(f"no broadcaster {d.target!r} in [[notify.broadcasts]]")
        if b.url is None:
            return "sirens"  # this broadcaster only sounds its sirens (their own deliveries)
        body = fill(
            b.body,
            {
                "text": d.body.get("text", ""),
                "clip": d.body.get("clip", ""),
                "level": d.body.get("level", ""),
                "village": d.body.get("village", ""),
                "point": d.body.get("point", ""),
                "code": d.body.get("code", ""),
            },
        )
        await asyncio.to_thread(self._post, b, body)
        return None

    def _post(self, b: Broadcast, data: bytes) -> None:
        assert b.url is not None
        headers = {"Content-Type": "application/json; charset=utf-8", **b.headers}
        req = urllib.request.Request(b.url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=b.timeout_s) as resp:
                if not 200 <= resp.status < 300:
                    raise DeliveryError(f"broadcast controller answered {resp.status}")
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"broadcast controller answered {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"broadcast controller unreachable: {e}") from e
