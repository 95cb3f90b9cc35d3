"""What a county plan's hash covers: shared by the county that signs a plan and the
station that checks it (gateway/county/plans.py, gateway/ingest/plans.py).

A plan is its rules (TOML text) and, optionally, the county's part a station needs
(`county`: the county's name, its people and its escalation deadlines). The hash is the
SHA-256 of the rules text, followed — when there is a county part — by a newline and the
county part as canonical JSON (keys sorted, no spaces, UTF-8). Either side changing a
person's phone changes the hash, so a station never runs people it was not sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def plan_hash(rules: str, county: Mapping[str, Any] | None = None) -> str:
    h = hashlib.sha256(rules.encode("utf-8"))
    if county:
        h.update(b"\n" + canonical(county))
    return h.hexdigest()
