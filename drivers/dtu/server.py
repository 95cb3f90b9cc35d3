"""4G DTUs in transparent mode: the listener, the registration, and what is behind.

A DTU connects, sends its registration packet, then heartbeats and the instrument's
serial bytes. Each connection has its own task; a connection that never registers, or
registers as a DTU not configured, is closed, logged and counted. A DTU that reconnects
takes over from its old connection at once when that one has been silent for
`duplicate_window_s` (the half-open socket a dropped 4G link leaves behind) or has
already closed; a second connection presenting the registration of a live one is a
second DTU: refused and logged. Behind a Modbus DTU the gateway is the RTU master over
the DTU's socket (drivers/dtu/modbus.py); behind an SL651 DTU the SL651 driver takes the
frames and its confirmations go back the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivers.dtu.config import DtuSection, packet
from drivers.dtu.link import Heartbeat, Identified, Unknown, WithHeartbeat, identify
from drivers.host import BatchBuilder, FieldSetup, Host, once
from drivers.link.frame_io import pump_connection
from drivers.link.framing import Reject, Stream
from drivers.modbus import codec as modbus_rtu
from drivers.sl651 import codec as sl651
from drivers.sl651.config import Sl651Section
from drivers.sl651.server import Sl651Driver
from gateway.core.errors import DriverError

if TYPE_CHECKING:
    from drivers.dtu.modbus import DtuModbusMaster

log = logging.getLogger("stationgw.dtu")

Sl651Handle = Callable[[list[Any], str, sl651.Reassembler], Awaitable[list[bytes]]]
PAUSE_S = 0.2  # a registration packet ends where the DTU pauses


@dataclass(eq=False)
class DtuConnection:
    dtu: DtuSection
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    source: str
    last_rx: float
    since: int = 0  # gateway time (UTC ms) of the registration
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    inbox: asyncio.Queue[modbus_rtu.ModbusFrame] = field(default_factory=lambda: asyncio.Queue(64))

    def close(self) -> None:
        self.closed.set()
        self.writer.close()

    def gone(self) -> bool:
        """Closed, or its end seen (EOF, reset) though its task has not finished yet."""
        r = self.reader
        return (
            self.closed.is_set()
            or r.at_eof()
            or r.exception() is not None
            or self.writer.is_closing()
        )


class DtuDriver:
    def __init__(
        self, host: Host, dtus: list[DtuSection], sl651_driver: Sl651Driver | None
    ) -> None:
        self.host = host
        self.dtus = dtus
        self.sl651 = sl651_driver
        self.once = once("dtu")
        self.live: dict[str, DtuConnection] = {}
        self._arrived: dict[str, asyncio.Event] = {d.id: asyncio.Event() for d in dtus}
        self.counts: dict[tuple[str, str], int] = {}
        self._writers: set[asyncio.StreamWriter] = set()
        self.servers: list[asyncio.Server] = []

    def count(self, dtu: str, event: str) -> None:
        self.counts[(dtu, event)] = self.counts.get((dtu, event), 0) + 1
        self.host.counter("dtu_events", (dtu, event))

    async def connected(self, dtu_id: str) -> DtuConnection:
        """The DTU's live connection, waiting for one if there is none."""
        while True:
            conn = self.live.get(dtu_id)
            if conn is not None and not conn.closed.is_set():
                return conn
            arrived = self._arrived[dtu_id]
            arrived.clear()
            await arrived.wait()

    def status(self) -> list[dict[str, Any]]:
        """Per configured DTU: connected, from where, since when, silent for, its counts;
        then refusals of connections no DTU could be named for, per port."""
        now = time.monotonic()  # the event loop's clock (also called from HTTP threads)
        out: list[dict[str, Any]] = []
        for d in self.dtus:
            conn = self.live.get(d.id)
            up = conn is not None and not conn.closed.is_set()
            out.append(
                {
                    "id": d.id,
                    "name": d.name,
                    "protocol": d.protocol,
                    "port": d.listen.port,
                    "connected": up,
                    "peer": conn.source if up and conn else None,
                    "since": conn.since if up and conn else None,
                    "silent_s": round(now - conn.last_rx, 1) if up and conn else None,
                    "counts": {e: n for (who, e), n in sorted(self.counts.items()) if who == d.id},
                }
            )
        for label in sorted({who for who, _ in self.counts if who.startswith("port ")}):
            counts = {e: n for (who, e), n in sorted(self.counts.items()) if who == label}
            out.append({"id": None, "name": label, "port": int(label[5:]), "counts": counts})
        return out

    def close_connections(self) -> None:
        for w in list(self._writers):
            w.close()

    # --- listening and registering ----------------------------------------------------

    async def serve(self) -> list[asyncio.Server]:
        ports: dict[tuple[str, int], list[DtuSection]] = {}
        for d in self.dtus:
            ports.setdefault((d.listen.host, d.listen.port), []).append(d)
        servers = self.servers
        for (host, port), dtus in ports.items():
            server = await asyncio.start_server(
                functools.partial(self._client, dtus=dtus), host, port
            )
            servers.append(server)
            log.info(
                "DTU listener on %s for %s",
                ", ".join(str(s.getsockname()) for s in server.sockets),
                ", ".join(f"{d.id} ({d.name})" for d in dtus),
            )
        return servers

    async def _register(
        self, reader: asyncio.StreamReader, dtus: list[DtuSection], source: str
    ) -> tuple[Identified | Unknown | None, bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(d.register_timeout_s for d in dtus)
        buf = b""
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None, buf
            try:
                data = await asyncio.wait_for(
                    reader.read(4096), min(left, PAUSE_S) if buf else left
                )
            except TimeoutError:
                if buf:
                    got = identify(buf, dtus, first_packet=True)
                    if got is not None:
                        return got, buf
                continue
            if not data:
                return None, buf
            buf += data
            got = identify(buf, dtus, first_packet=False)
            if got is not None:
                return got, buf

    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dtus: list[DtuSection]
    ) -> None:
        peer = writer.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if peer else "?"
        here = writer.get_extra_info("sockname")
        port = int(here[1]) if here else dtus[0].listen.port
        self._writers.add(writer)
        try:
            got, buf = await self._register(reader, dtus, where)
            if not isinstance(got, Identified):
                self._refuse_unregistered(got, buf, where, port)
                return
            dtu = got.dtu
            conn = self._claim(dtu, reader, writer, where)
            if conn is None:
                return
            try:
                await self._pump(conn, reader, buf[got.consumed :])
            finally:
                conn.closed.set()
                if self.live.get(dtu.id) is conn:
                    del self.live[dtu.id]
                log.info("DTU %s (%s) from %s: disconnected", dtu.id, dtu.name, where)
        except (ConnectionError, OSError) as e:
            log.info("DTU connection from %s lost (%s)", where, e)
        except Exception:
            log.exception("DTU connection from %s: closed after an error", where)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _refuse_unregistered(self, got: Unknown | None, buf: bytes, where: str, port: int) -> None:
        label = f"port {port}"
        if isinstance(got, Unknown):
            self.count(label, "refused_unknown")
            self.once.warning(
                f"unknown:{got.registration!r}",
                "DTU on port %d from %s: registration %s matches no configured DTU; refused",
                port,
                where,
                got.shown(),
            )
        else:
            self.count(label, "never_registered")
            shown = Unknown(buf).shown() if buf else "nothing"
            self.once.warning(
                f"never:{where.rsplit(':', 1)[0]}",
                "DTU on port %d from %s: no registration (sent %s) before the connection "
                "closed or its timeout; closed",
                port,
                where,
                shown,
            )

    def _claim(
        self,
        dtu: DtuSection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
    ) -> DtuConnection | None:
        loop = asyncio.get_running_loop()
        holder = self.live.get(dtu.id)
        if holder is not None and not holder.gone():
            silent = loop.time() - holder.last_rx
            if silent < dtu.duplicate_window_s:
                self.count(dtu.id, "refused_duplicate")
                log.warning(
                    "DTU %s (%s): %s presents its registration while %s is connected "
                    "(last bytes %.1f s ago): a second DTU with the same registration; refused",
                    dtu.id,
                    dtu.name,
                    where,
                    holder.source,
                    silent,
                )
                return None
            self.count(dtu.id, "taken_over")
            log.info(
                "DTU %s (%s): reconnected from %s; its old connection %s (silent %.0f s) closed",
                dtu.id,
                dtu.name,
                where,
                holder.source,
                silent,
            )
            holder.close()
        if holder is not None:
            holder.close()  # its end was seen; its task may still be finishing
        conn = DtuConnection(dtu, reader, writer, where, loop.time(), self.host.clock())
        self.live[dtu.id] = conn
        self.count(dtu.id, "registered")
        log.info("DTU %s (%s) registered from %s", dtu.id, dtu.name, where)
        self._arrived[dtu.id].set()
        return conn

    # --- the instrument's bytes --------------------------------------------------------

    async def _pump(self, conn: DtuConnection, reader: asyncio.StreamReader, rest: bytes) -> None:
        dtu = conn.dtu
        hb = packet(dtu.heartbeat) if dtu.heartbeat else None
        source = f"dtu {dtu.id} {conn.source}"
        loop = asyncio.get_running_loop()
        if dtu.protocol == "modbus_rtu":
            mb_stream: Stream[Any] = Stream(WithHeartbeat(modbus_rtu.take, hb))
            stream = mb_stream

            async def handle(items: list[Any]) -> list[bytes]:
                conn.last_rx = loop.time()
                rejects = []
                for item in items:
                    if isinstance(item, modbus_rtu.ModbusFrame):
                        if conn.inbox.full():
                            conn.inbox.get_nowait()
                        conn.inbox.put_nowait(item)
                    elif isinstance(item, Reject):
                        rejects.append(item)
                await self._garbage(dtu, source, rejects)
                return []

        else:
            if self.sl651 is None:
                raise RuntimeError("an SL651 DTU without the SL651 driver")
            sl = self.sl651
            stream = Stream(WithHeartbeat(functools.partial(sl651.take, tz=sl.tz), hb))
            reassembler = sl651.Reassembler(sl.tz)

            async def handle(items: list[Any]) -> list[bytes]:
                conn.last_rx = loop.time()
                frames = [i for i in items if not isinstance(i, Heartbeat)]
                if any(isinstance(i, Reject) for i in frames):
                    self.count(dtu.id, "garbage")
                return await sl.handle(frames, source, reassembler) if frames else []

        if rest:
            for r in await handle(stream.feed(rest)):
                conn.writer.write(r)
        await pump_connection(
            reader,
            conn.writer,
            stream,
            handle,
            source=source,
            frame_timeout_s=dtu.frame_timeout_s,
            idle_timeout_s=dtu.idle_timeout_s,
        )
        if not conn.closed.is_set() and loop.time() - conn.last_rx >= dtu.idle_timeout_s:
            self.count(dtu.id, "closed_idle")

    async def _garbage(self, dtu: DtuSection, source: str, rejects: list[Reject]) -> None:
        """Bytes between Modbus answers that are no answer: one quarantine entry per read."""
        if not rejects:
            return
        self.count(dtu.id, "garbage")
        b = BatchBuilder(self.host, "dtu", self.once)
        raw = b"".join(r.raw for r in rejects)
        b.quarantine(
            source,
            rejects[0].kind,
            f"DTU {dtu.id}: {len(raw)} bytes that are no Modbus answer at stream offset "
            f"{rejects[0].offset} ({rejects[0].reason})",
            raw,
        )
        await self.host.submit(b.batch)


@dataclass
class DtuDrivers:
    """The DTU listeners and a Modbus master per DTU that has RTU slaves behind it."""

    server: DtuDriver
    masters: dict[str, DtuModbusMaster]

    def status(self) -> list[dict[str, Any]]:
        return self.server.status()

    def close_connections(self) -> None:
        self.server.close_connections()


async def start(host: Host, setup: FieldSetup) -> DtuDrivers:
    """`[[dtu]]`: its listeners; SL 651 behind a DTU goes through the SL 651 driver (started
    here without a listener of its own when no `[sl651]` runs one); Modbus RTU behind a DTU
    is polled by a master per DTU."""
    from drivers.dtu.modbus import DtuModbusMaster  # it imports this module

    dtus = setup.section if isinstance(setup.section, list) else []
    sl = setup.drivers.get("sl651")
    if not isinstance(sl, Sl651Driver) and any(d.protocol == "sl651" for d in dtus):
        sl = Sl651Driver(host, Sl651Section())
    server = DtuDriver(host, dtus, sl if isinstance(sl, Sl651Driver) else None)
    try:
        setup.servers.extend(await server.serve())
    except OSError as e:
        raise DriverError(f"DTU listener: {e.strerror or e}") from e
    masters: dict[str, DtuModbusMaster] = {}
    for d in dtus:
        master = DtuModbusMaster(host, server, d)
        if master.slaves:
            masters[d.id] = master
            setup.spawn(f"modbus behind dtu {d.id}", master.run)
    return DtuDrivers(server, masters)
