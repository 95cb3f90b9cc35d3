"""A QoS 1 publisher for streams over many topics (mosquitto_pub -l takes only one).

`python -m gateway.devtools.bench.multipub --port P FILE`: each line of FILE is `topic<TAB>payload`.
Publishes with up to 1,000 messages in flight, waits for every PUBACK, prints one JSON
line: messages and seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("file")
    args = p.parse_args(argv)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    start = time.perf_counter()
    infos = []
    with open(args.file, "rb") as f:
        for line in f:
            topic, payload = line.rstrip(b"\n").split(b"\t", 1)
            infos.append(client.publish(topic.decode(), payload, qos=1))
            if len(infos) >= 5000:
                for info in infos:
                    info.wait_for_publish(60)
                infos.clear()
    for info in infos:
        info.wait_for_publish(60)
    seconds = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
