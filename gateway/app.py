"""Assemble and run one gateway: store, rules, MQTT source, pipeline and HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from drivers.link.mqtt_client import MqttSource
from gateway.config import stored as stored_station
from gateway.config.station import Config
from gateway.events import Hub
from gateway.http import limits as http_limits
from gateway.http.app import Context, create_app
from gateway.ingest.commit import Ingestor
from gateway.ingest.dead_letter import DeadLetters
from gateway.ingest.field import FieldDrivers
from gateway.ingest.health import HealthMonitor, HealthRecorder
from gateway.ingest.host import GatewayHost
from gateway.ingest.pipeline import Pipeline, wall_ms
from gateway.ingest.registry import Registry
from gateway.ingest.rules_loader import RulesLoader, rule_files
from gateway.ingest.rules_service import RulesService
from gateway.metrics import Metrics
from gateway.notify.setup import build_dispatcher
from gateway.storage.service import StorageJobs
from gateway.tickets.desk import Desk
from gateway.tickets.store import StationStore
from gateway.uplinks.service import Uplinks

log = logging.getLogger("stationgw")

GATEWAY_NODE = "_gateway"  # the gateway's own availability; no device id starts with "_"


def _freeze_startup_heap() -> None:
    """Keep what start-up built (modules, config, rules, rule state) out of the cycle
    collector's full passes. A full pass walked all of it: 60-120 ms with 2,000 rules,
    with the event loop stopped, and the worst alert latencies of the bench. Objects made
    later are collected as before; start-up's own garbage is collected first."""
    gc.collect()
    gc.freeze()


class _Server(uvicorn.Server):
    """uvicorn inside our loop: the gateway owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Running:
    """Handles a caller (the demo, tests) may want while the gateway runs."""

    http_port: int
    metrics: Metrics
    broker_up: asyncio.Event
    field: FieldDrivers | None = None


async def run_gateway(
    cfg: Config,
    stop: asyncio.Event,
    *,
    started: asyncio.Future[Running] | None = None,
    freeze_heap: bool = False,
) -> None:
    """Run until `stop` is set; then finish the batch in hand and shut down cleanly.
    `freeze_heap`: the process is this gateway's own (`_freeze_startup_heap`)."""
    loader = RulesLoader(cfg)
    loader.load()
    from gateway.ingest.plans import load_saved, plan_path

    load_saved(plan_path(cfg), loader)  # the county's plan it ran before (#19 item 4)
    ruleset = loader.ruleset()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
    loop = asyncio.get_running_loop()
    store = await loop.run_in_executor(writer, StationStore, cfg.database.path)
    await loop.run_in_executor(writer, store.register_devices, [d.id for d in cfg.devices])
    desk = Desk(store, cfg)  # warnings, calls and deliveries (used on the writer thread)
    desk.people.use_county(loader.plan.county if loader.plan else None)  # as it ran before
    ingestor = await loop.run_in_executor(writer, Ingestor, store, ruleset, desk)
    ingestor.gap_grace_ms = cfg.pipeline.seq_gap_grace_s * 1000
    uplinks = Uplinks(cfg, cfg.database.path, writer, store, wall_ms)  # to the county
    registry = Registry(cfg)
    hub = Hub()
    metrics = Metrics()
    dispatcher = build_dispatcher(cfg, desk, writer, hub, metrics.registry)
    base = f"stations/{cfg.station.id}"

    def on_connection(up: bool) -> None:
        metrics.broker_up.set(1 if up else 0)
        hub.publish("broker", {"connected": up})

    source = MqttSource(
        cfg.broker,
        [f"{base}/+/telemetry", f"{base}/+/status"],
        capacity=cfg.pipeline.queue_max,
        availability_topic=f"{base}/{GATEWAY_NODE}/status",
        on_connection=on_connection,
        fresh_only=frozenset({f"{base}/+/telemetry"}),
    )
    pipeline = Pipeline(
        source,
        ingestor,
        writer,
        registry,
        hub,
        metrics,
        batch_max=cfg.pipeline.batch_max,
        commit_wait_s=cfg.storage.commit_wait_ms / 1000,
        commit_delay_s=float(os.environ.get("STATIONGW_TEST_COMMIT_DELAY_S", "0")),
        crash_after_commits=int(os.environ.get("STATIONGW_TEST_CRASH_AFTER_COMMITS", "0")),
        dead_letters=DeadLetters(Path(f"{cfg.database.path}.inflight")),
        crash_on=os.environ.get("STATIONGW_TEST_CRASH_ON", "").encode(),
    )
    pipeline.on_tickets = dispatcher.wake  # deliveries go out right after their commit
    metrics.watch(source.depth, hub.subscribers)
    rules_service = RulesService(loader, ingestor, writer, pipeline)
    rules_service.on_plan = desk.people.use_county

    def running_plan() -> dict[str, object]:
        plan = loader.plan
        return {"version": plan and plan.version, "hash": plan and plan.hash, "errors": []}

    uplinks.plans(  # the county's rule plans, over the nats uplink
        lambda body, key: rules_service.apply_plan(body, key, plan_path(cfg)), running_plan
    )

    def keep_station_file() -> None:
        """The database describes itself: the station file and rule texts it runs with."""
        texts = {}
        if cfg.rules.path is not None:
            for p in rule_files(cfg.rules.path):
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    texts[p.name] = p.read_text(encoding="utf-8")
        stored_station.save(store.conn, cfg, texts, wall_ms())

    await loop.run_in_executor(writer, keep_station_file)
    rules_service.on_reload = keep_station_file
    recorder = HealthRecorder()

    async def write(fn: Callable[[StationStore], Any]) -> Any:
        def tx() -> Any:
            with store.transaction():
                return fn(store)

        return await loop.run_in_executor(writer, tx)

    host = GatewayHost(
        cfg, registry, pipeline.submit, recorder, metrics, wall_ms, write, hub, desk.adopt
    )
    field = FieldDrivers(host, cfg)
    monitor = HealthMonitor(cfg, store, writer, recorder, hub, wall_ms)
    ctx = Context(
        config=cfg,
        db_path=cfg.database.path,
        writer=writer,
        writer_store=store,
        hub=hub,
        metrics=metrics,
        broker_connected=lambda: source.connected,
        queue_depth=source.depth,
        store_error=lambda: pipeline.store_error,
        rules=rules_service,
        started_at=time.monotonic(),
        desk=desk,
        dispatcher=dispatcher,
        uplinks=uplinks,
        clock_skews=lambda: pipeline.skews,
        dtus=lambda: field.drivers["dtu"].status() if "dtu" in field.drivers else [],
    )
    server = _Server(
        uvicorn.Config(
            create_app(ctx),
            host=cfg.http.host,
            port=cfg.http.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            **http_limits.server_options(
                request_timeout_s=cfg.http.request_timeout_s,
                idle_timeout_s=cfg.http.idle_timeout_s,
                max_connections=cfg.http.max_connections,
                trusted_proxies=cfg.http.trusted_proxies,
            ),
        )
    )
    log.info(
        "station %s: %d devices, %d rules, database %s",
        cfg.station.id,
        len(cfg.devices),
        len(ruleset.rules),
        cfg.database.path,
    )
    await source.start()
    await dispatcher.start()
    await uplinks.start()
    pipe_task = asyncio.create_task(pipeline.run(), name="pipeline")
    health_task = asyncio.create_task(monitor.run(), name="device-health")
    http_task = asyncio.create_task(server.serve(), name="http")
    helpers: list[asyncio.Task[Any]] = [
        asyncio.create_task(rules_service.ticks(), name="rule-timers"),
        asyncio.create_task(rules_service.watch(), name="rule-files"),
        asyncio.create_task(StorageJobs(store, cfg.storage, writer, wall_ms).run(), name="storage"),
    ]
    if threading.current_thread() is threading.main_thread():  # signals go to that thread
        loop.add_signal_handler(
            signal.SIGHUP,
            lambda: helpers.append(asyncio.create_task(rules_service.reload("SIGHUP"))),
        )
    try:
        await field.start()
        while not server.started:
            if http_task.done():
                http_task.result()
                raise OSError(f"HTTP server on {cfg.http.host}:{cfg.http.port} did not start")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        log.info("web page on http://%s:%d/", cfg.http.host, port)
        if freeze_heap:
            _freeze_startup_heap()
        if started is not None:
            started.set_result(
                Running(http_port=port, metrics=metrics, broker_up=source.up, field=field)
            )
        stop_task = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            {stop_task, pipe_task, http_task}, return_when=asyncio.FIRST_COMPLETED
        )
        stop_task.cancel()
        for task in done:
            if task is not stop_task:
                task.result()  # a crashed part stops the gateway loudly
    finally:
        log.info("stopping")
        for task in helpers:
            task.cancel()
        await field.stop()
        health_task.cancel()
        pipe_task.cancel()
        await pipeline.drain()
        await monitor.close()
        await dispatcher.stop()
        await uplinks.stop()
        hub.close_all()
        server.should_exit = True
        await source.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(http_task, 5)
        await loop.run_in_executor(writer, store.close)
        writer.shutdown(wait=True)
        log.info("stopped")
