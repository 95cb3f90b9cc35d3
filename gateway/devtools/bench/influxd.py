"""A real InfluxDB 1.x server (Debian's `influxdb` package) for the bench and the uplink
tests: its own config and data folder, loopback on free random ports, no systemd. It can
be stopped and started again on the same port and data folder (an outage)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.devtools.bench.procs import BenchError, free_port, stop_process, wait_port

CONF = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[logging]
  level = "error"
[continuous_queries]
  enabled = false
"""


def influxd() -> str:
    found = shutil.which("influxd")
    if found is None:
        raise BenchError("influxd is not installed (Debian package influxdb; scripts/test)")
    return found


class InfluxServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = folder / "influxdb.conf"
        self.conf.write_text(CONF.format(rpc=free_port(), dir=folder, port=self.port))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "influxd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [influxd(), "-config", str(self.conf)], stdout=log, stderr=log
            )
        wait_port(self.port, 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the port opens before the HTTP service answers
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/ping", timeout=1).close()
                return
            time.sleep(0.05)
        raise BenchError(f"influxd did not answer /ping: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 20)
        self.proc = None

    def query(self, q: str, db: str | None = None) -> list[dict[str, object]]:
        """InfluxQL through /query (POST); the series of the first statement."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        body = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", body, timeout=60) as resp:
            result = json.loads(resp.read())["results"][0]
        if "error" in result:
            raise BenchError(f"{q}: {result['error']}")
        series: list[dict[str, object]] = result.get("series", [])
        return series
