"""The peer: the same stream through a Node-RED flow, where Node-RED installs from npm.

Flow: mqtt in (QoS 1, MQTT 5) → json → switch (level_m above 8, or not) → function
counting messages. At the last message the function publishes the first and last arrival
times on `bench/nodered/done`. A `status` node reports the mqtt node's connection on
`bench/nodered/status`, over the same connection and after its SUBSCRIBE, so once the
bench sees it the flow is subscribed.

Unlike the other consumers, Node-RED takes the stream live while mosquitto_pub publishes
it: its mqtt node unsubscribes when Node-RED stops, so a persistent session cannot hold
the stream for it. Its figure is therefore capped by the publisher's rate, which the bench
reports beside it.

Node-RED does less than the gateway: it acknowledges on arrival, stores nothing and
checks one threshold. It is installed once into the user's cache folder with
`npm install node-red`; where that fails or takes over 5 minutes the peer is reported as
not available, with the reason.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.devtools.bench.procs import BenchError, free_port, stop_process, wait_port

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stationgw" / "node-red"
COUNTER = """
let c = (context.get('c') || 0) + 1;
context.set('c', c);
if (c === 1) { context.set('first', Date.now()); }
if (c === %d) {
  return {topic: 'bench/nodered/done',
          payload: JSON.stringify({first: context.get('first'), last: Date.now(), count: c})};
}
return null;
"""


class NodeRed:
    name = "peer"

    def __init__(self, broker_port: int, folder: Path) -> None:
        self.broker_port = broker_port
        self.folder = folder
        self.red_js = CACHE / "node_modules" / "node-red" / "red.js"
        self.proc: subprocess.Popen[bytes] | None = None
        self.topic = ""
        self._control: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._client: mqtt.Client | None = None

    def prepare(self) -> str | None:
        """Install Node-RED if needed; return why it is not available, or None."""
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            return "node or npm is not installed (Debian packages nodejs, npm)"
        if not self.red_js.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            try:
                done = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), "node-red"],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return "npm install node-red took over 5 minutes"
            if done.returncode != 0 or not self.red_js.exists():
                return f"npm install node-red failed: {done.stderr.strip()[-300:]}"
        return None

    def _flow(self, topic: str, count: int) -> list[dict[str, object]]:
        broker = {
            "id": "nr-broker",
            "type": "mqtt-broker",
            "name": "bench",
            "broker": "127.0.0.1",
            "port": str(self.broker_port),
            "clientid": "bench-nodered",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "5",
            "keepalive": "60",
            "cleansession": True,
        }
        return [
            {"id": "nr-tab", "type": "tab", "label": "bench"},
            broker,
            {
                "id": "nr-in",
                "type": "mqtt in",
                "z": "nr-tab",
                "topic": topic,
                "qos": "1",
                "datatype": "utf8",
                "broker": "nr-broker",
                "nl": False,
                "rap": True,
                "inputs": 0,
                "wires": [["nr-json"]],
            },
            {
                "id": "nr-json",
                "type": "json",
                "z": "nr-tab",
                "property": "payload",
                "action": "obj",
                "wires": [["nr-switch"]],
            },
            {
                "id": "nr-switch",
                "type": "switch",
                "z": "nr-tab",
                "property": "payload.values.level_m",
                "propertyType": "msg",
                "rules": [{"t": "gt", "v": "8", "vt": "num"}, {"t": "else"}],
                "checkall": "false",
                "outputs": 2,
                "wires": [["nr-count"], ["nr-count"]],
            },
            {
                "id": "nr-count",
                "type": "function",
                "z": "nr-tab",
                "func": COUNTER % count,
                "outputs": 1,
                "wires": [["nr-out"]],
            },
            {
                "id": "nr-out",
                "type": "mqtt out",
                "z": "nr-tab",
                "topic": "",
                "qos": "1",
                "broker": "nr-broker",
                "wires": [],
            },
            {
                "id": "nr-status",
                "type": "status",
                "z": "nr-tab",
                "scope": ["nr-in"],
                "wires": [["nr-status-fn"]],
            },
            {
                "id": "nr-status-fn",
                "type": "function",
                "z": "nr-tab",
                "func": "return {topic: 'bench/nodered/status', "
                "payload: String(msg.status.fill) + ' ' + String(msg.status.text)};",
                "outputs": 1,
                "wires": [["nr-out"]],
            },
        ]

    def _start(self, topic: str, count: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "flows.json").write_text(json.dumps(self._flow(topic, count)))
        port = free_port()
        (self.folder / "settings.js").write_text(
            f"module.exports = {{uiHost: '127.0.0.1', uiPort: {port}, flowFile: 'flows.json', "
            "credentialSecret: false, logging: {console: {level: 'warn'}}};\n"
        )
        if self._client is None:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-nodered-control")
            c.on_message = lambda cl, u, m: self._control.put((m.topic, bytes(m.payload)))
            c.connect("127.0.0.1", self.broker_port)
            c.subscribe("bench/nodered/#", qos=1)
            c.loop_start()
            self._client = c
        log = (self.folder / "node-red.log").open("ab")
        self.proc = subprocess.Popen(
            [
                shutil.which("node") or "node",
                str(self.red_js),
                "--userDir",
                str(self.folder),
                "--settings",
                str(self.folder / "settings.js"),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_port(port, 60)

    def _wait(self, topic: str, timeout: float) -> bytes:
        while True:
            try:
                got, payload = self._control.get(timeout=timeout)
            except queue.Empty:
                raise BenchError(f"Node-RED sent nothing on {topic} in {timeout} s") from None
            if got == topic:
                return payload

    def session(self, topic: str, count: int) -> None:
        """Start Node-RED and wait until it is subscribed; it takes the stream live."""
        self.topic = topic
        self._start(topic, count)
        status = b""
        while not status.startswith(b"green"):  # each wait blocks for the next status
            status = self._wait("bench/nodered/status", 60)

    def drain(self, count: int, timeout: float) -> dict[str, float]:
        try:
            done = json.loads(self._wait("bench/nodered/done", timeout))
        finally:
            if self.proc is not None:
                stop_process(self.proc)
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
                self._client = None
        seconds = max((done["last"] - done["first"]) / 1000, 1e-3)
        return {"readings_per_s": round(count / seconds)}
