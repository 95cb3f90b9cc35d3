"""An uplink's view of the outbox: its cursor, the rows after it, confirming rows.

Reads go through the uplink's own read-only connection on its own thread (WAL: they never
wait for the writer); the cursor moves through the single writer thread, in a
transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from gateway.storage.store import Store
from gateway.uplinks import outbox
from gateway.uplinks.outbox import Row


class Feed:
    def __init__(self, name: str, db_path: Path, writer: Executor, writer_store: Store) -> None:
        self.name = name
        self.db_path = db_path
        self.writer = writer
        self.writer_store = writer_store
        self._reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"feed-{name}")
        self._reader: Store | None = None
        self._nudge = asyncio.Event()
        self.confirmed = 0  # as last written

    def _conn(self) -> Store:
        if self._reader is None:
            self._reader = Store(self.db_path, writer=False)
        return self._reader

    async def cursor(self) -> int:
        loop = asyncio.get_running_loop()
        self.confirmed = await loop.run_in_executor(
            self._reader_thread, lambda: outbox.cursor(self._conn().conn, self.name)
        )
        return self.confirmed

    async def fetch(self, after: int, limit: int) -> list[Row]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_thread, lambda: outbox.fetch(self._conn().conn, after, limit)
        )

    async def events_after(self, after: int, limit: int) -> list[Row]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_thread, lambda: outbox.events_after(self._conn().conn, after, limit)
        )

    async def newest(self) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_thread, lambda: outbox.newest(self._conn().conn)
        )

    async def confirm(self, seq: int) -> None:
        if seq <= self.confirmed:
            return
        store = self.writer_store

        def tx() -> None:
            with store.transaction():
                outbox.confirm(store.conn, self.name, seq)

        await asyncio.get_running_loop().run_in_executor(self.writer, tx)
        self.confirmed = seq

    def nudge(self) -> None:
        """New rows were committed (or the uplink should look again)."""
        self._nudge.set()

    async def wait(self, seconds: float) -> None:
        """Until nudged, or `seconds` passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nudge.wait(), seconds)
        self._nudge.clear()

    def close(self) -> None:
        def shut() -> None:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        self._reader_thread.submit(shut).result()
        self._reader_thread.shutdown(wait=True)
