"""The InfluxDB uplink: outbox rows as line protocol, batched, retried with backoff.

Two writers behind one small interface (`write(body)` raises `Retry` or `Rejected`):
- `V2Writer`: influxdb-client's v2 write API (`/api/v2/write?bucket=&org=`), which
  InfluxDB 2.x, 3.x and 1.8+ answer (1.8: the bucket is "database/retention-policy" and the
  token "user:password").
- `V1Writer`: a plain HTTP POST to `/write?db=` for InfluxDB 1.x before 1.8.

A batch is confirmed (the cursor moves past it) once the server answered 2xx. A server
that is down or answers 5xx/429 is retried with exponential backoff, forever: the outbox
holds the rows meanwhile. A 400 (a point the server refuses; InfluxDB writes the rest of
the batch) is logged and counted as rejected, and the uplink goes on.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from gateway.config.uplinks import InfluxUplinkSection
from gateway.core.errors import GatewayError
from gateway.uplinks.feed import Feed
from gateway.uplinks.line_protocol import LineEncoder

log = logging.getLogger("stationgw.uplink.influx")


class UplinkError(GatewayError):
    """An uplink's far side did not take a batch."""


class Retry(UplinkError):
    """Not taken now (server down, overloaded, 5xx): send the same batch again later."""


class Rejected(UplinkError):
    """Refused for good (400: bad points): never send this batch again."""


class Writer(Protocol):
    def write(self, body: bytes) -> None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class V1Writer:
    """POST /write?db=&precision=ms (InfluxDB 1.x), one kept-alive connection."""

    def __init__(self, cfg: InfluxUplinkSection) -> None:
        u = urllib.parse.urlsplit(cfg.url)
        self.https = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.https else 8086)
        query = {"db": cfg.database or "", "precision": "ms"}
        if cfg.retention_policy:
            query["rp"] = cfg.retention_policy
        self.path = f"{u.path.rstrip('/')}/write?{urllib.parse.urlencode(query)}"
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.username is not None:
            auth = f"{cfg.username}:{cfg.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth).decode()
        self.timeout = cfg.timeout_s
        self.verify = cfg.verify_ssl
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                import ssl

                ctx = ssl.create_default_context()
                if not self.verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def write(self, body: bytes) -> None:
        try:
            conn = self._connection()
            conn.request("POST", self.path, body, self.headers)
            resp = conn.getresponse()
            text = resp.read()[:500].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Retry(f"influx {self.host}:{self.port}: {e}") from e
        _judge(resp.status, text)

    def ping(self) -> bool:
        try:
            conn = self._connection()
            conn.request("GET", "/ping")
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            return False
        return 200 <= resp.status < 300

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class V2Writer:
    """influxdb-client's synchronous write API; its own retries off (ours back off)."""

    def __init__(self, cfg: InfluxUplinkSection) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.client = InfluxDBClient(
            url=cfg.url,
            token=cfg.token or "",
            org=cfg.org,
            timeout=round(cfg.timeout_s * 1000),
            verify_ssl=cfg.verify_ssl,
        )
        self.api = self.client.write_api(write_options=SYNCHRONOUS)
        self.bucket = cfg.bucket or ""
        self.org = cfg.org

    def write(self, body: bytes) -> None:
        import urllib3
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            precision: Any = WritePrecision.MS  # a str constant; the stub says the class
            self.api.write(self.bucket, self.org, body, write_precision=precision)
        except ApiException as e:
            _judge(int(e.status or 0), str(e.body or e.reason)[:500])
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise Retry(f"influx: {e}") from e

    def ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def _judge(status: int, text: str) -> None:
    if 200 <= status < 300:
        return
    if status in (400, 413, 422):
        raise Rejected(f"influx answered {status}: {text}")
    raise Retry(f"influx answered {status}: {text}")


class InfluxLink:
    """Reads the outbox after its cursor and writes it to InfluxDB, in order."""

    name = "influx"

    def __init__(
        self,
        cfg: InfluxUplinkSection,
        encoder: LineEncoder,
        writer: Writer,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.encoder = encoder
        self.writer = writer
        self.sleep = sleep
        self.max_backoff_s = max_backoff_s
        self.connected = False
        self.rejected = 0  # batches the server refused for good
        self.written = 0  # points written since start
        self.last_error: str | None = None
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uplink-influx")

    def status(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "written": self.written,
            "rejected_batches": self.rejected,
            "skipped_values": self.encoder.skipped,
            "last_error": self.last_error,
        }

    async def run(self, feed: Feed) -> None:
        loop = asyncio.get_running_loop()
        after = await feed.cursor()
        batch = self.cfg.batch_size
        next_ping = loop.time()
        try:
            pending = asyncio.ensure_future(feed.fetch(after, batch))
            while True:
                rows = await pending
                if not rows:
                    if loop.time() >= next_ping:  # idle: is the server there? (status)
                        self.connected = await loop.run_in_executor(self._io, self.writer.ping)
                        next_ping = loop.time() + 10
                    await feed.wait(0.2)
                    pending = asyncio.ensure_future(feed.fetch(after, batch))
                    continue
                last = rows[-1].seq
                pending = asyncio.ensure_future(feed.fetch(last, batch))  # read while we send
                lines = self.encoder.lines(rows)
                if lines:
                    body = "\n".join(lines).encode()
                    await self._send(loop, body, len(lines))
                after = last
                await feed.confirm(after)
        finally:
            pending.cancel()
            self.writer.close()
            self._io.shutdown(wait=False)

    async def _send(self, loop: asyncio.AbstractEventLoop, body: bytes, points: int) -> None:
        delay = 0.2
        while True:
            try:
                await loop.run_in_executor(self._io, self.writer.write, body)
            except Rejected as e:
                self.rejected += 1
                self.last_error = str(e)
                log.error("influx refused a batch of %d points, going on: %s", points, e)
                return
            except Retry as e:
                if self.connected or self.last_error != str(e):
                    log.warning("influx write failed, retrying in %.1f s: %s", delay, e)
                self.connected = False
                self.last_error = str(e)
                await self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if not self.connected:
                log.info("influx %s: writing", self.cfg.url)
            self.connected = True
            self.last_error = None
            self.written += points
            return


def make_writer(cfg: InfluxUplinkSection) -> Writer:
    return V2Writer(cfg) if cfg.mode == "v2" else V1Writer(cfg)
