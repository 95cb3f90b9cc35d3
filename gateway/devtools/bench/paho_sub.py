"""A bare paho-mqtt subscriber that only parses the JSON: the gateway's yardstick.

Run as its own process, like the gateway: `python -m gateway.devtools.bench.paho_sub --port P
--client-id ID --topic T --count N`. MQTT 5, persistent session, a large Receive Maximum,
paho's automatic acknowledgement. With `--session-only` it subscribes and leaves, so the
broker queues the stream for it. Prints one JSON line: messages, readings, seconds from
the first message to the last.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=0, help="messages to take, then leave")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--session-only", action="store_true")
    args = p.parse_args(argv)

    done = threading.Event()
    subscribed = threading.Event()
    state = {"messages": 0, "readings": 0, "first": 0.0, "last": 0.0}

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        now = time.perf_counter()
        if not state["messages"]:
            state["first"] = now
        state["messages"] += 1
        state["readings"] += len(body) if isinstance(body, list) else 1
        state["last"] = now
        if state["messages"] >= args.count:
            done.set()

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], props: Properties | None
    ) -> None:
        subscribed.set()

    def on_connect(
        c: mqtt.Client,
        u: object,
        flags: mqtt.ConnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        c.subscribe(args.topic, qos=1)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    client.connect("127.0.0.1", args.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        if args.session_only:
            if not subscribed.wait(20):
                print(json.dumps({"error": "not subscribed"}))
                return 1
            print(json.dumps({"subscribed": True}))
            return 0
        finished = done.wait(args.timeout)
        seconds = state["last"] - state["first"]
        print(
            json.dumps(
                {
                    "messages": state["messages"],
                    "readings": state["readings"],
                    "seconds": seconds,
                    "complete": finished,
                }
            )
        )
        return 0 if finished else 1
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
