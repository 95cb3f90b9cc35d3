"""Webhook channel: HTTP POST of the delivery's JSON; anything but 2xx is retried."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from gateway.notify.base import Delivery, DeliveryError


class WebhookChannel:
    name = "webhook"

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _post(self, url: str, data: bytes) -> None:
        req = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                if not 200 <= resp.status < 300:
                    raise DeliveryError(f"webhook answered {resp.status}")
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"webhook answered {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"webhook unreachable: {e}") from e

    async def send(self, d: Delivery) -> None:
        body = {**d.body, "delivery": d.id}
        data = json.dumps(body, ensure_ascii=False).encode()
        await asyncio.to_thread(self._post, d.target, data)
