"""Dead letters: a message the gateway died on again and again is set aside, not retried.

Exceptions while decoding, judging or committing one message are caught and quarantine
that message (gateway/ingest/pipeline.py). A crash the process cannot catch (a segfault in a
C extension, the kernel's OOM killer, `os._exit`) leaves the message unacknowledged, so
the broker delivers it again after every restart: without this, a crash loop.

Before a batch is processed its messages' digests are written to a small marker file
next to the database, and the marker is cleared once the batch is acknowledged. At the
next start the digests still in the marker were in flight when the process died: each
one's crash count goes up by one. A suspect message (count > 0) is then processed alone,
so the next crash names it exactly; at MAX_CRASHES it is quarantined with the reason,
acknowledged, and the station goes on. Messages that went through clear their count.

The marker is one file overwritten in place (pwrite, ftruncate: two system calls a batch)
without fsync: a process crash keeps what the kernel has, and a power cut is not a crash
loop. The digest is of topic and body, so a device resending
exactly the same bytes shares its fate (same bytes, same crash).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("stationgw.dead_letter")

MAX_CRASHES = 3  # deaths with the message in flight; the third sets it aside
_MAX_SUSPECTS = 10_000  # the marker stays small whatever happens


def digest(topic: str, payload: bytes) -> str:
    h = hashlib.blake2b(topic.encode("utf-8", "surrogateescape"), digest_size=16)
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()


def after_restart(in_flight: Iterable[str], crashes: dict[str, int]) -> dict[str, int]:
    """Pure: the crash counts once the digests that were in flight are charged one each."""
    out = dict(crashes)
    for d in in_flight:
        out[d] = out.get(d, 0) + 1
    return out


class DeadLetters:
    """The marker file and the crash counts (event loop side only)."""

    def __init__(self, path: Path, max_crashes: int = MAX_CRASHES) -> None:
        self.path = path
        self.max_crashes = max_crashes
        self.crashes: dict[str, int] = {}
        self._in_flight: list[str] = []
        self._dirty = False
        self._fd = -1

    def start(self) -> None:
        """Read what the last run left in flight; charge it one crash."""
        try:
            data = json.loads(self.path.read_bytes())
            in_flight = [str(d) for d in data.get("in_flight", [])]
            crashes = {str(k): int(v) for k, v in data.get("crashes", {}).items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as e:
            log.warning("dead-letter marker %s unreadable (%s); starting afresh", self.path, e)
            return
        self.crashes = after_restart(in_flight, crashes)
        if in_flight:
            log.warning(
                "the last run died with %d message(s) in flight; each is now processed "
                "alone and set aside after %d deaths",
                len(in_flight),
                self.max_crashes,
            )
        self._write([])

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def count(self, d: str) -> int:
        return self.crashes.get(d, 0) if self.crashes else 0

    def begin(self, digests: list[str]) -> None:
        """Before processing: these are in flight."""
        self._write(digests)

    def done(self, digests: Iterable[str]) -> None:
        """Acknowledged: nothing in flight; these went through (or were set aside)."""
        if self.crashes:
            for d in digests:
                self.crashes.pop(d, None)
        self._write([])

    def _write(self, in_flight: list[str]) -> None:
        if not in_flight and not self._in_flight and not self._dirty:
            return  # the common case: nothing was in flight and nothing is suspect
        if len(self.crashes) > _MAX_SUSPECTS:
            self.crashes.clear()
        body = json.dumps({"in_flight": in_flight, "crashes": self.crashes}).encode()
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.pwrite(self._fd, body, 0)
            os.ftruncate(self._fd, len(body))
        except OSError as e:  # a full disk: the store refuses too, and says so
            log.warning("dead-letter marker %s not written: %s", self.path, e)
        self._in_flight = in_flight
        self._dirty = bool(self.crashes)
