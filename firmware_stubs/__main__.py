"""Run simulated field devices from a scenario file.

    python -m firmware_stubs --broker 127.0.0.1:1883 --station qingshui \\
        --scenario firmware_stubs/scenarios/rainstorm.toml [--device rg-01 ...] [--for 60]

Ctrl-C or SIGTERM stops every device cleanly (each publishes ``offline``); a second
Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware_stubs import RAINSTORM
from firmware_stubs.mqtt_device import Protocol, run_scenario
from firmware_stubs.scenario import Scenario, ScenarioError, load_scenario


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 1883
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m firmware_stubs", description="Simulated field devices speaking MQTT JSON."
    )
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883), help="HOST:PORT")
    p.add_argument("--station", required=True, help="station id in the topics")
    p.add_argument("--scenario", type=Path, default=RAINSTORM, help="scenario TOML file")
    p.add_argument(
        "--device", action="extend", nargs="+", default=[], metavar="ID", help="only these"
    )
    p.add_argument("--for", dest="for_s", type=_positive_float, metavar="SECONDS")
    p.add_argument("--interval", type=_positive_float, metavar="S", help="override all")
    p.add_argument("--count", type=_positive_int, metavar="N", help="reports per device")
    p.add_argument("--protocol", choices=["3.1.1", "5"], default="5")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("-v", "--verbose", action="store_true", help="log every report")
    return p


def _select(scenario: Scenario, ids: Sequence[str]) -> Scenario:
    if not ids:
        return scenario
    wanted, known = set(ids), {d.id for d in scenario.devices}
    if wanted - known:
        unknown = ", ".join(sorted(wanted - known))
        raise ScenarioError(f"unknown device(s) {unknown}; known: {', '.join(sorted(known))}")
    return dataclasses.replace(
        scenario, devices=tuple(d for d in scenario.devices if d.id in wanted)
    )


async def _run(args: argparse.Namespace, scenario: Scenario, protocol: Protocol) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        log = logging.getLogger("firmware_stubs")
        log.info("stopping (again to abort)")
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    if args.for_s is not None:
        loop.call_later(args.for_s, stop.set)
    host, port = args.broker
    await run_scenario(
        scenario,
        station=args.station,
        host=host,
        port=port,
        protocol=protocol,
        stop=stop,
        seed=args.seed,
        interval_s=args.interval,
        count=args.count,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        scenario = _select(load_scenario(args.scenario), args.device)
    except ScenarioError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    logging.getLogger("mqtt").setLevel(logging.WARNING)  # paho's own chatter
    protocol: Protocol = "3.1.1" if args.protocol == "3.1.1" else "5"
    asyncio.run(_run(args, scenario, protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
