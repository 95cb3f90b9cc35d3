"""The channels a station file asks for, wired to one dispatcher."""

from __future__ import annotations

from concurrent.futures import Executor

from prometheus_client import CollectorRegistry

from gateway.config.station import Config
from gateway.events import Hub
from gateway.notify.base import Channel
from gateway.notify.dashboard import DashboardChannel
from gateway.notify.dispatcher import Dispatcher
from gateway.notify.mqtt_alerts import MqttAlertChannel
from gateway.notify.mqtt_link import MqttLink
from gateway.notify.siren import SirenChannel
from gateway.notify.siren_serial import SerialSirenLine, SerialSirens
from gateway.notify.webhook import WebhookChannel
from gateway.tickets.desk import Desk


def build_dispatcher(
    cfg: Config, desk: Desk, writer: Executor, hub: Hub, registry: CollectorRegistry | None = None
) -> Dispatcher:
    n = cfg.notify
    channels: dict[str, Channel] = {"dashboard": DashboardChannel(hub)}
    dispatcher = Dispatcher(desk, writer, {}, hub, max_attempts=n.max_attempts, registry=registry)
    link: MqttLink | None = None
    mqtt_sirens = [s for s in n.sirens if s.transport == "mqtt"]
    if n.mqtt.enabled or mqtt_sirens:
        link = MqttLink(cfg.broker)
    if n.mqtt.enabled and link is not None:
        channels["mqtt"] = MqttAlertChannel(
            link,
            # replace, not str.format: a topic from the file cannot reach attributes
            n.mqtt.alert_topic.replace("{station}", cfg.station.id),
            n.mqtt.ack_topic.replace("{station}", cfg.station.id),
            dispatcher.on_ack,
        )
    if n.sirens:
        lines = {
            s.device: SerialSirenLine(s.port, s.baud, s.confirm_s)
            for s in n.sirens
            if s.transport == "serial" and s.port is not None
        }
        channels["siren"] = SirenChannel(
            link if mqtt_sirens else None,
            cfg.station.id,
            {s.device: s.confirm_s for s in mqtt_sirens},
            SerialSirens(lines) if lines else None,
        )
    if n.webhook is not None:
        channels["webhook"] = WebhookChannel(n.webhook.timeout_s)
    if n.sms is not None:
        from gateway.notify.sms import SmsChannel

        sms = SmsChannel(n.sms, dispatcher.on_ack)
        channels["sms"] = sms
        if n.voice is not None:  # the same modem and its one thread: one AT session
            from gateway.notify.voice import VoiceChannel

            channels["voice"] = VoiceChannel(
                sms, n.voice, dispatcher.on_ack, lambda i: i in desk.stopped
            )
    if n.robots:
        from gateway.notify.robots import RobotChannel

        channels["robot"] = RobotChannel(n.robots, registry=dispatcher.registry)
    if n.broadcasts:
        from gateway.notify.broadcast import BroadcastChannel

        channels["broadcast"] = BroadcastChannel(n.broadcasts)
    dispatcher.add_channels(channels, link)
    return dispatcher
