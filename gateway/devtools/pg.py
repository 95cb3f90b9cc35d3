"""A throwaway PostgreSQL 15 (Debian's binaries) in a temporary folder, for the tests, the
county bench and `stationgw county demo`: `initdb` there, the unix socket there too, a
random TCP port on loopback; run as `nobody` when we are root (postgres refuses root),
then in a folder of its own under the system's temporary folder (one that `nobody` can
reach whatever happens to the caller's folder; `remove()` deletes it).
`stop()`/`start()` restart it on the same port with its data (a database restart)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway.core.errors import GatewayError
from gateway.devtools.cluster import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_binary(name: str) -> str:
    p = PG_BIN / name
    if p.is_file():
        return str(p)
    found = shutil.which(name)
    if found is None:
        raise GatewayError(f"{name} not found: apt-get install postgresql (15, Debian 12)")
    return found


class ThrowawayPostgres:
    def __init__(self, folder: Path, *, database: str = "county") -> None:
        self.as_root = os.geteuid() == 0
        if self.as_root:
            folder = Path(tempfile.mkdtemp(prefix="stationgw-pg-"))
        self.folder = folder
        self.data = folder / "data"
        self.database = database
        self.port = free_port()
        self.started = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        cmd = ["runuser", "-u", "nobody", "--", *args] if self.as_root else args
        try:
            return subprocess.run(cmd, check=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]
        except subprocess.CalledProcessError as e:
            out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(
                errors="replace"
            )
            raise GatewayError(f"{' '.join(args[:2])} failed: {out.strip()[-2000:]}") from None

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_root:  # nobody must own the data
            shutil.chown(self.folder, "nobody")
        self._run(
            [
                pg_binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "shared_buffers = 128MB\n"
                "max_connections = 100\n"
                "logging_collector = off\n"
            )

    def start(self) -> None:
        self._run(
            [
                pg_binary("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "postgres.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        if not self.started:
            self._run(
                [
                    pg_binary("createdb"),
                    "-h",
                    str(self.folder),
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    self.database,
                ]
            )
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([pg_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        """Stop it and delete its folder (only one it made itself, as root)."""
        self.stop("immediate")
        if self.as_root:
            shutil.rmtree(self.folder, ignore_errors=True)
