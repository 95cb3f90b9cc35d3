"""HJ 212 analysers over TCP: frames in, readings committed, the answer the Flag asks for.

Each connection has its own task (drivers/link/frame_io.pump_connection). Bytes go through the
pure codec (drivers/hj212/codec.py); frames of configured analysers (by MN) become
readings, everything else goes to quarantine with the reason and the byte offset, and
the connection goes on. The CN=9014 answer is written only after the batch holding the
frame's readings is committed. A value whose `-Flag` is not N is stored flagged
(FLAG_INSTRUMENT) and never judged by hazard rules.
"""

from __future__ import annotations

import asyncio
import logging
from zoneinfo import ZoneInfo

from drivers.hj212.codec import (
    DATA_COMMANDS,
    DATA_FLAGS,
    Frame,
    Hj212Error,
    data_answer,
    readings,
    take,
)
from drivers.hj212.config import Hj212Section, Hj212Transport
from drivers.host import BatchBuilder, FieldSetup, Host, once
from drivers.link.frame_io import pump_connection
from drivers.link.framing import Reject, Stream

log = logging.getLogger("stationgw.hj212")

Item = Frame | Reject


class Hj212Driver:
    def __init__(self, host: Host, section: Hj212Section) -> None:
        self.host = host
        self.section = section
        self.tz = ZoneInfo(section.timezone)
        self.by_mn: dict[str, tuple[str, Hj212Transport]] = {
            d.transport.mn: (d.id, d.transport)
            for d in host.devices
            if isinstance(d.transport, Hj212Transport)
        }
        self.once = once("hj212")
        self.frames = 0
        self.replies = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    def close_connections(self) -> None:
        for w in list(self._writers):
            w.close()

    async def handle(self, items: list[Item], source: str) -> list[bytes]:
        """Commit what the items carry; return the answers to send now."""
        b = BatchBuilder(self.host, "hj212", self.once)
        replies: list[bytes] = []
        for item in items:
            if isinstance(item, Reject):
                self._reject(b, item, source)
                continue
            known = self.by_mn.get(item.mn)
            if known is None:
                b.quarantine(
                    source,
                    "unknown_station",
                    f"HJ 212 MN {item.mn} is not configured (CN={item.cn})",
                    item.raw,
                )
                continue
            device, t = known
            if t.password is not None and item.pw != t.password:
                b.quarantine(source, "password", f"{device}: wrong PW {item.pw!r}", item.raw)
                continue
            self.host.counter("messages", "hj212")
            self.frames += 1
            b.seen(device)
            if item.cn not in DATA_COMMANDS:
                self.once.warning(
                    f"cn:{device}:{item.cn}",
                    "%s: HJ 212 CN=%s is not data; nothing stored",
                    device,
                    item.cn,
                )
                continue
            try:
                self._readings(b, device, t, item)
            except Hj212Error as e:
                self.host.count(device, "malformed", b.now)
                b.quarantine(
                    source, "malformed", f"{device}: {e.reason} (byte {e.offset})", item.raw
                )
                continue
            if self.section.reply and item.reply_wanted and item.qn is not None:
                replies.append(data_answer(item))
        if not b.empty:
            await self.host.submit(b.batch)
        return replies

    def _reject(self, b: BatchBuilder, r: Reject, source: str) -> None:
        known = self.by_mn.get(r.station) if r.station else None
        if known is not None:
            self.host.count(known[0], "crc_errors" if r.kind == "crc" else "malformed", b.now)
        who = f"{known[0]}: " if known else ""
        b.quarantine(source, r.kind, f"{who}{r.describe()}", r.raw)

    def _readings(self, b: BatchBuilder, device: str, t: Hj212Transport, f: Frame) -> None:
        values: list[tuple[str, int, float]] = []
        abnormal: set[tuple[str, int]] = set()
        for code, suffix, value, ts, flag in readings(f, self.tz):
            metric = t.metric(f.cn, code, suffix)
            if metric is None:
                if suffix in ("Rtd", "Avg"):
                    self.once.warning(
                        f"unmapped:{device}:{f.cn}:{code}",
                        "%s: HJ 212 %s %s-%s is not mapped to a metric; not stored",
                        device,
                        DATA_COMMANDS[f.cn],
                        code,
                        suffix,
                    )
                continue
            values.append((metric, ts, value))
            if flag is not None and flag != "N":
                abnormal.add((metric, ts))
                self.once.warning(
                    f"flag:{device}:{code}:{flag}",
                    "%s: %s %s-Flag=%s (%s): stored flagged, not judged by hazard rules",
                    device,
                    code,
                    suffix,
                    flag,
                    DATA_FLAGS.get(flag, "abnormal"),
                )
        b.readings(device, values, abnormal)

    async def serve(self) -> asyncio.Server:
        listen = self.section.listen
        assert listen is not None
        server = self.server = await asyncio.start_server(self._client, listen.host, listen.port)
        log.info("HJ 212 listening on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = f"hj212 tcp {peer[0]}:{peer[1]}" if peer else "hj212 tcp"
        self.connections += 1
        self._writers.add(writer)

        async def handle(items: list[Item]) -> list[bytes]:
            replies = await self.handle(items, source)
            self.replies += len(replies)
            return replies

        try:
            await pump_connection(
                reader,
                writer,
                Stream(take),
                handle,
                source=source,
                frame_timeout_s=self.section.frame_timeout_s,
                idle_timeout_s=self.section.idle_timeout_s,
            )
        finally:
            self._writers.discard(writer)


async def start(host: Host, setup: FieldSetup) -> Hj212Driver:
    """The `[hj212]` listener, when it has `listen`."""
    section = setup.section if isinstance(setup.section, Hj212Section) else Hj212Section()
    driver = Hj212Driver(host, section)
    if section.listen is not None:
        setup.servers.append(await setup.listen("HJ 212", driver.serve))
    return driver
