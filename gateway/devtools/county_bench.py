"""`stationgw county bench [--quick] --json PATH`: a 200-station county on this machine.

Started by the command and stopped by it: a 3-node NATS JetStream cluster on a private
bridge, a throwaway PostgreSQL, two `stationgw county` instances, three real stations
(`stationgw run` with a `nats` uplink, Mosquitto and 200 rain gauges each) in network
namespaces of their own (veth pairs on the bridge, a /24 of 10.x no interface uses,
nothing routed out), and a load generator speaking the station uplink exactly for the
other 197 stations (200 devices each, one report a minute: 667 readings/s in all).

One run, in phases (`Plan`; time compression: every phase runs at the real rate, shorter
than the issue's hour and ten minutes — the figures are rates and percentiles, which do
not depend on how long they are sampled; the outage's backlog is `outage_s` of readings):
1. steady (`steady_s`), with `kill -9` of one NATS node a third in and its return two
   thirds in → steady_readings_per_s, latency_ms_p50/p99 (station's reading time →
   the county's row committed; the real stations' include device → gateway);
2. storm: 10× the rate for `storm_s` → storm_latency_ms_p99;
3. `kill -9` of one county instance → failover_s: until every reading sent before the
   kill is in PostgreSQL (what the dead instance held comes back after the consumer's
   ack wait);
4. outage: the whole county side (cluster and service) down for `outage_s`, every
   station buffering; then back → backlog_drain_s (until all of the backlog is stored)
   and drain_live_latency_ms_p99 (readings made while it drains);
5. lost (sent by a station, never stored) and duplicates (a series point stored twice),
   both over the whole run; cpu_percent_per_1000_rps and rss_mb of the county service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nats
import psycopg

from gateway.county.consumer import ensure_stream
from gateway.devtools.cluster import NatsCluster, free_port
from gateway.devtools.county_sim import (
    STATIONGW,
    LoadStations,
    Netns,
    SimStation,
    county_file,
)
from gateway.devtools.pg import ThrowawayPostgres

CLK_TCK = os.sysconf("SC_CLK_TCK")

KEYS = (  # the keys; the JSON has a few more for context
    "county.steady_readings_per_s",
    "county.latency_ms_p50",
    "county.latency_ms_p99",
    "county.storm_latency_ms_p99",
    "county.lost",
    "county.duplicates",
    "county.failover_s",
    "county.backlog_drain_s",
    "county.drain_live_latency_ms_p99",
    "county.cpu_percent_per_1000_rps",
    "county.rss_mb",
)


@dataclass(frozen=True)
class Plan:
    stations: int = 200
    devices: int = 200
    real: int = 3  # real `stationgw run` gateways, each in its own namespace
    interval_s: float = 60  # one report a minute
    steady_s: float = 600
    storm_s: float = 180
    storm_factor: float = 10
    outage_s: float = 300
    settle_limit_s: float = 600  # the most a phase waits for the county to catch up


QUICK = Plan(steady_s=45, storm_s=20, outage_s=30, settle_limit_s=150)
FULL = Plan()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _say(msg: str) -> None:
    print(f"[county bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:  # OSError: gone
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class County:
    """A `stationgw county -c` instance."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [STATIONGW, "county", "-c", str(self.config), "--http-port", str(self.http_port)],
                stdout=out,
                stderr=out,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Db:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def one(self, sql: str, *args: Any) -> Any:
        try:
            with psycopg.connect(self.dsn, connect_timeout=5) as conn:
                row = conn.execute(sql, args).fetchone()
                return row[0] if row else None
        except psycopg.Error:
            return None

    def latency(self, t0_ms: int, t1_ms: int, like: str = "%") -> dict[str, float | int]:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY d) FROM (SELECT "
                "extract(epoch FROM stored_at - ts) * 1000 AS d FROM readings "
                "WHERE ts >= to_timestamp(%s / 1000.0) AND ts < to_timestamp(%s / 1000.0) "
                "AND station LIKE %s) x",
                (t0_ms, t1_ms, like),
            ).fetchone()
        assert row is not None
        return {"count": int(row[0]), "p50": float(row[1] or 0), "p99": float(row[2] or 0)}

    def stored_upto(self, t_ms: int) -> int:
        n = self.one(
            "SELECT count(*) FROM readings WHERE station LIKE 'load%%' "
            "AND ts <= to_timestamp(%s / 1000.0)",
            t_ms,
        )
        return int(n) if n is not None else -1


class Bench:
    def __init__(self, plan: Plan, folder: Path) -> None:
        self.plan = plan
        self.folder = folder
        self.netns = Netns(plan.real, str(os.getpid() % 100_000))
        self.cluster: NatsCluster | None = None
        self.pg = ThrowawayPostgres(folder / "pg")
        self.counties: list[County] = []
        self.sims: list[SimStation] = []
        self.load: LoadStations | None = None
        self.results: dict[str, Any] = {}
        self.rss_max = 0.0
        self._sampling = True
        self.load_made_at: dict[int, dict[str, int]] = {}

    # -- the county's side -----------------------------------------------------------------

    def _sample(self) -> None:
        while self._sampling:
            for c in self.counties:
                if c.pid is not None:
                    self.rss_max = max(self.rss_max, _rss_mb(c.pid))
            time.sleep(1)

    async def setup(self) -> None:
        p = self.plan
        _say(f"network namespaces ({p.real}), cluster, PostgreSQL")
        self.netns.create()
        self.cluster = NatsCluster(self.folder / "nats", 3, hosts=[self.netns.host] * 3)
        self.cluster.start()
        await asyncio.to_thread(self.pg.init)
        await asyncio.to_thread(self.pg.start)
        real = [f"real{i + 1}" for i in range(p.real)]
        load = [f"load{i + 1:03d}" for i in range(p.stations - p.real)]
        config = self.folder / "county.toml"
        config.write_text(
            county_file(
                "基准县应急管理局",
                self.cluster.urls,
                self.pg.dsn,
                [(s, s) for s in real + load],
                free_port(),
            )
        )
        nc = await nats.connect(servers=self.cluster.urls)
        for _ in range(200):
            try:
                await ensure_stream(nc.jetstream(timeout=5), "COUNTY")
                break
            except Exception:
                await asyncio.sleep(0.25)
        await nc.close()
        self.counties = [County(config, self.folder / f"county-{x}.log") for x in "ab"]
        for c in self.counties:
            c.start()
        threading.Thread(target=self._sample, daemon=True).start()
        _say(f"{p.real} real stations in their namespaces, {len(load)} generated ones")
        for i, sid in enumerate(real):
            sim = SimStation(
                self.folder / sid,
                sid,
                f"真实站{i + 1}",
                p.devices,
                self.cluster.urls,
                prefix=self.netns.prefix(i),
                host=self.netns.addrs[i],
                interval_s=p.interval_s,
            )
            await asyncio.to_thread(sim.start)
            self.sims.append(sim)
        self.load = LoadStations(self.cluster.urls, load, p.devices, p.interval_s)

    def speed(self, factor: float) -> None:
        assert self.load is not None
        self.load.speed = factor
        for s in self.sims:
            s.devices.speed = factor

    async def caught_up(self, t_ms: int, made: int, limit_s: float) -> float | None:
        """Seconds until every generated reading made up to `t_ms` is stored."""
        db = Db(self.pg.dsn)
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            if await asyncio.to_thread(db.stored_upto, t_ms) >= made:
                return time.monotonic() - start
            await asyncio.sleep(0.25)
        return None

    async def first_after(self, t_ms: int, limit_s: float) -> float | None:
        """Seconds from `t_ms` until a reading made after it is stored."""
        db = Db(self.pg.dsn)
        while (time.time_ns() // 1_000_000 - t_ms) / 1000 < limit_s:
            got = await asyncio.to_thread(
                db.one,
                "SELECT extract(epoch FROM min(stored_at)) * 1000 FROM readings "
                "WHERE ts > to_timestamp(%s / 1000.0)",
                t_ms,
            )
            if got is not None:
                return max(0.0, (float(got) - t_ms) / 1000)
            await asyncio.sleep(0.1)
        return None

    def made(self) -> int:
        assert self.load is not None
        return sum(self.load.generated().values())

    async def run(self) -> dict[str, Any]:
        p = self.plan
        assert self.cluster is not None and self.load is not None
        db = Db(self.pg.dsn)
        load_task = asyncio.create_task(self.load.run(), name="load")
        await asyncio.sleep(5)  # warm up

        _say(f"steady {p.steady_s:g} s; kill -9 of NATS node n3 a third in, back at two")
        cpu0 = {c.pid: _cpu_s(c.pid) for c in self.counties if c.pid}
        t0, m0 = now_ms(), time.monotonic()
        await asyncio.sleep(p.steady_s / 3)
        self.cluster.kill(2)
        await asyncio.sleep(p.steady_s / 3)
        self.cluster.start(2)
        await asyncio.sleep(p.steady_s / 3)
        t1, elapsed = now_ms(), time.monotonic() - m0
        cpu_s = sum(_cpu_s(pid) - c for pid, c in cpu0.items() if pid)

        _say(f"storm: {p.storm_factor:g}x for {p.storm_s:g} s")
        self.speed(p.storm_factor)
        s0 = now_ms()
        await asyncio.sleep(p.storm_s)
        s1 = now_ms()
        self.speed(1)

        _say("kill -9 of one county instance")
        await asyncio.sleep(3)
        tk, made = now_ms(), self.made()
        self.counties[0].kill9()
        # until what the dead one held is stored and the survivor stores what came after
        held = await self.caught_up(tk, made, p.settle_limit_s)
        after = await self.first_after(tk, p.settle_limit_s)
        failover = None if held is None or after is None else max(held, after)

        _say(f"outage of the whole county side for {p.outage_s:g} s")
        for c in self.counties:
            c.stop()
        self.cluster.stop()
        await asyncio.sleep(p.outage_s)
        backlog = self.load.backlog()
        tb, made = now_ms(), self.made()
        self.cluster.start()
        for c in self.counties:
            c.start()
        drain = await self.caught_up(tb, made, p.settle_limit_s)
        td = now_ms()
        await asyncio.sleep(3)

        _say("stopping the stations; counting")
        self.load.generating = False
        for s in self.sims:
            await asyncio.to_thread(s.devices.stop)
        deadline = time.monotonic() + p.settle_limit_s
        while self.load.backlog() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        generated = self.load.generated()
        real_sent = {s.station: s.devices.acked for s in self.sims}

        def stored() -> dict[str, int]:
            with psycopg.connect(self.pg.dsn) as conn:
                rows = conn.execute(
                    "SELECT station, count(DISTINCT seq) FROM readings GROUP BY station"
                ).fetchall()
            return {str(a): int(b) for a, b in rows}

        have: dict[str, int] = {}
        while time.monotonic() < deadline:
            have = await asyncio.to_thread(stored)
            short = sum(max(0, n - have.get(s, 0)) for s, n in generated.items())
            short += sum(max(0, n - have.get(s, 0)) for s, n in real_sent.items())
            if short == 0:
                break
            await asyncio.sleep(1)
        lost = sum(max(0, n - have.get(s, 0)) for s, n in generated.items())
        lost += sum(max(0, n - have.get(s, 0)) for s, n in real_sent.items())
        duplicates = db.one(
            "SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY station, device, metric, ts "
            "HAVING count(*) > 1) d"
        )
        self.load.stop()
        await load_task

        steady = await asyncio.to_thread(db.latency, t0, t1)
        storm = await asyncio.to_thread(db.latency, s0, s1)
        live = await asyncio.to_thread(db.latency, tb, td)
        real_lat = await asyncio.to_thread(db.latency, t0, t1, "real%")
        rps = steady["count"] / elapsed
        cpu_percent = cpu_s / elapsed * 100
        total = sum(generated.values()) + sum(real_sent.values())
        return {
            "county.steady_readings_per_s": round(rps, 1),
            "county.latency_ms_p50": round(float(steady["p50"]), 1),
            "county.latency_ms_p99": round(float(steady["p99"]), 1),
            "county.storm_latency_ms_p99": round(float(storm["p99"]), 1),
            "county.lost": lost,
            "county.duplicates": int(duplicates) if duplicates is not None else None,
            "county.failover_s": round(failover, 2) if failover is not None else None,
            "county.backlog_drain_s": round(drain, 2) if drain is not None else None,
            "county.drain_live_latency_ms_p99": round(float(live["p99"]), 1),
            "county.cpu_percent_per_1000_rps": round(cpu_percent / (rps / 1000), 1),
            "county.rss_mb": round(self.rss_max, 1),
            # context
            "county.real_stations_latency_ms_p99": round(float(real_lat["p99"]), 1),
            "county.storm_readings_per_s": round(storm["count"] / ((s1 - s0) / 1000), 1),
            "county.backlog_readings": backlog,
            "county.readings_total": total,
            "county.stations": p.stations,
            "county.devices": p.stations * p.devices,
            "county.generator_resends": self.load.resends,
        }

    def close(self) -> None:
        self._sampling = False
        if self.load is not None:
            self.load.stop()
        for s in self.sims:
            s.stop()
        for c in self.counties:
            c.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.pg.remove()
        self.netns.remove()


def run_county_bench(quick: bool, json_path: Path | None, keep: Path | None) -> int:
    if os.geteuid() != 0:
        print("stationgw county bench: needs root (it makes network namespaces)", file=sys.stderr)
        return 1
    plan = QUICK if quick else FULL
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="stationgw-county-bench-", dir=keep))
    bench = Bench(plan, folder)
    started = time.monotonic()
    try:

        async def main() -> dict[str, Any]:
            await bench.setup()
            return await bench.run()

        figures = asyncio.run(main())
    finally:
        bench.close()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    out = {
        "run": "quick" if quick else "full",
        "plan": asdict(plan),
        "seconds": round(time.monotonic() - started, 1),
        "figures": figures,
        "compression": (
            "each phase at the real rate (200 stations × 200 devices, one report a minute), "
            f"sampled for {plan.steady_s:g} s steady, {plan.storm_s:g} s storm and a "
            f"{plan.outage_s:g} s outage instead of an hour, ten minutes and an hour"
        ),
    }
    text = json.dumps(out, ensure_ascii=False, indent=2)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n")
    ok = figures["county.lost"] == 0 and figures["county.duplicates"] == 0
    return 0 if ok else 1
