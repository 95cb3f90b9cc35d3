"""A station siren / warning-broadcast actuator over MQTT (for tests and demos).

It listens on `stations/<station>/<device>/command` and, unless told to stay mute,
confirms each command on `stations/<station>/<device>/confirm` with the command's id.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class SirenStub:
    def __init__(self, host: str, port: int, station: str, device: str, *, confirm: bool = True):
        self.station = station
        self.device = device
        self.confirm = confirm
        self.commands: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"siren-{device}-{uuid.uuid4().hex[:6]}"
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self.subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_a: object) -> None:
        client.subscribe(f"stations/{self.station}/{self.device}/command", qos=1)

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        self.commands.append(cmd)
        if self.confirm:
            answer = {"id": cmd["id"], "ok": True, "device": self.device}
            client.publish(
                f"stations/{self.station}/{self.device}/confirm", json.dumps(answer), qos=1
            )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class SerialSirenStub:
    """A siren on a serial line (a pseudo-terminal): answers `SIREN <id> SOUND <level>`
    with `ACK <id>`, or `NAK <id> <reason>` when `refuse` is set, or nothing when mute."""

    def __init__(self, *, confirm: bool = True, refuse: str | None = None) -> None:
        import os
        import tty

        self.confirm = confirm
        self.refuse = refuse
        self.commands: list[str] = []
        self.master, self._slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serial-siren", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import os
        import select

        buf = b""
        while not self._stop.is_set():
            try:
                if not select.select([self.master], [], [], 0.1)[0]:
                    continue
                chunk = os.read(self.master, 1024)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                raw, _, buf = buf.partition(b"\n")
                line = raw.decode(errors="replace").strip()
                self.commands.append(line)
                words = line.split()
                if len(words) >= 3 and words[0] == "SIREN" and self.confirm:
                    answer = f"NAK {words[1]} {self.refuse}" if self.refuse else f"ACK {words[1]}"
                    with contextlib.suppress(OSError):
                        os.write(self.master, f"{answer}\r\n".encode())

    def close(self) -> None:
        import os

        self._stop.set()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._thread.join(5)
