"""The spine's MQTT JSON devices: `transport = "mqtt_json"` (the default)."""

from __future__ import annotations

from typing import Literal

from drivers.link.config import TransportModel


class MqttJsonTransport(TransportModel):
    kind: Literal["mqtt_json"] = "mqtt_json"
