"""The command queue survives the gateway's death: a technician queues a command with
`stationgw command` for an SL651 station that is asleep (not connected), the `stationgw
run` process is killed with SIGKILL, started again, the station wakes and reports, and the
command goes out after that report and is answered — once, with every step audited."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from firmware_stubs.sl651_demo import VERSION, DemoStation
from tests.conftest import REPO, Gateway, add_user, free_port
from tests.integration.test_end_to_end import db_rows, wait_for

pytestmark = pytest.mark.integration

SL651 = """
[[devices]]
id = "hs-01"
name = "上坪河水文站"
kind = "hydrology"
point = "p1"
metrics.level_m = { name = "水位", unit = "m", min = 0, max = 50 }
transport = { kind = "sl651", address = "0012345601", elements = { Z = "level_m" } }

[sl651]
listen = { host = "127.0.0.1", port = PORT }
"""


@contextmanager
def station_awake(port: int) -> Iterator[DemoStation]:
    """The SL651 stub station (HEX mode) dialling the gateway, reporting at once, then
    answering the centre's commands; stopped on leaving."""
    station = DemoStation("0012345601", ascii_mode=False)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(station.run(port, stop, interval_s=600))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield station
    finally:
        loop.call_soon_threadsafe(stop.set)
        t.join(10)
        loop.close()


def test_a_queued_command_survives_kill_9_and_is_answered_after_the_restart(
    gateway: Gateway,
) -> None:
    port = free_port()
    head, sep, rest = gateway.config.read_text().partition("[broker]")
    gateway.config.write_text(head + SL651.replace("PORT", str(port)) + "\n" + sep + rest)
    gateway.start()
    password = add_user(gateway.db, "sun", "technician")
    queued = subprocess.run(
        [
            *(sys.executable, "-m", "gateway.cli", "command", "hs-01", "version"),
            *("-c", str(gateway.config), "--user", "sun", "--password-stdin", "--json"),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert queued.returncode == 0, queued.stderr
    said = queued.stdout.splitlines()
    assert said[0].startswith("上坪河水文站: 查询软件版本 (version) 已排队, 编号 1;"), said
    assert json.loads(said[1])["state"] == "queued"

    states = "SELECT id, name, state, attempts, answer FROM device_commands"
    assert gateway.kill(signal.SIGKILL) == -signal.SIGKILL  # no chance to tidy up
    assert db_rows(gateway.db, states) == [(1, "version", "queued", 0, None)]

    gateway.start()
    time.sleep(1.0)  # asleep a while after the restart: nothing is sent to nobody
    assert db_rows(gateway.db, states) == [(1, "version", "queued", 0, None)]
    with station_awake(port) as station:
        wait_for(
            lambda: db_rows(gateway.db, states)[0][2] == "answered",
            what="the command answered after the restart",
        )
        assert station.answered == [0x45]  # the version query reached it once
    assert db_rows(gateway.db, states) == [(1, "version", "answered", 1, f"软件版本: {VERSION}")]
    audit = db_rows(
        gateway.db,
        "SELECT user, action FROM audit WHERE action LIKE 'command.%' ORDER BY id",
    )
    assert audit == [("sun", "command.queued"), (None, "command.sent"), (None, "command.answered")]
    # the report that woke it was stored too: the station was heard after the restart
    assert db_rows(
        gateway.db, "SELECT count(*) FROM devices WHERE id = 'hs-01' AND online = 1"
    ) == [(1,)]
