"""Prometheus metrics of one gateway (own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.dtu_events = Counter(
            "stationgw_dtu_events",
            "DTU connections: registered, refused (unknown, duplicate, never), taken over, "
            "closed idle, garbage between frames",
            ["dtu", "event"],
            registry=r,
        )
        self.variants = Counter(
            "stationgw_frame_variants",
            "Frames accepted with a departure from their standard (SL651 F1 28 …), per device",
            ["device", "variant"],
            registry=r,
        )
        self.messages = Counter(
            "stationgw_messages", "MQTT messages taken from the broker", ["kind"], registry=r
        )
        self.readings_in = Counter(
            "stationgw_readings_in", "Readings decoded from device payloads", registry=r
        )
        self.readings_stored = Counter(
            "stationgw_readings_stored", "Readings committed to the store", registry=r
        )
        self.duplicates = Counter(
            "stationgw_readings_duplicate",
            "Redelivered readings recognised and stored once",
            registry=r,
        )
        self.unkeyed = Counter(
            "stationgw_readings_unkeyed",
            "Readings sent with neither ts nor seq: a redelivery of one cannot be recognised",
            registry=r,
        )
        self.retained_ignored = Counter(
            "stationgw_telemetry_retained_ignored",
            "Retained telemetry replayed by the broker at subscription, not taken as new",
            registry=r,
        )
        self.out_of_range = Counter(
            "stationgw_readings_out_of_range",
            "Readings outside the sensor's physical range (stored flagged, not judged)",
            registry=r,
        )
        self.quarantined = Counter(
            "stationgw_quarantined", "Messages or parts kept in quarantine", ["reason"], registry=r
        )
        self.acks = Counter(
            "stationgw_mqtt_acks", "QoS 1 acknowledgements sent after commit", registry=r
        )
        self.batches = Counter("stationgw_batches", "Batches committed", registry=r)
        self.commit_failures = Counter(
            "stationgw_commit_failures", "Batches the store refused (retried)", registry=r
        )
        self.ticket_changes = Counter(
            "stationgw_ticket_changes", "Tickets opened or changed by rules", registry=r
        )
        self.open_tickets = Gauge("stationgw_open_tickets", "Tickets not closed", registry=r)
        self.queue_depth = Gauge(
            "stationgw_queue_depth", "Messages waiting for the pipeline", registry=r
        )
        self.broker_up = Gauge("stationgw_broker_connected", "1 when connected", registry=r)
        self.sse_clients = Gauge("stationgw_sse_clients", "Event stream subscribers", registry=r)

    def watch(self, queue_depth: Callable[[], float], sse: Callable[[], float]) -> None:
        self.queue_depth.set_function(queue_depth)
        self.sse_clients.set_function(sse)

    def render(self) -> bytes:
        return generate_latest(self.registry)
