"""Rules: CPU per reading of the pure evaluator (`rules.evaluator.evaluate`) with N rules.

Rule k watches metric k % 4 of device k // 4 (per-series thresholds over many series,
as `workload` generates them). The readings cover 500 devices × 4 metrics, below every
threshold, in batches of 2,000 like the pipeline's; the series state is carried from
batch to batch as the gateway does. Nothing but `evaluate` is timed.
"""

from __future__ import annotations

import time

from gateway.bench.workload import evaluator_readings, ruleset
from rules.evaluator import SeriesKey, SeriesState, evaluate

DEVICES = 500
BATCH = 2000


def us_per_reading(rules: int, readings: int) -> float:
    rs = ruleset(rules, DEVICES)
    batches = max(1, readings // BATCH)
    data = evaluator_readings(batches * BATCH, DEVICES, 1_780_000_000_000)
    state: dict[SeriesKey, SeriesState] = {}
    evaluate(rs, state, data[:BATCH], 0)  # warm up
    total = 0.0
    for b in range(batches):
        batch = data[b * BATCH : (b + 1) * BATCH]
        t = time.perf_counter()
        result = evaluate(rs, state, batch, b)
        total += time.perf_counter() - t
        state.update(result.updates)
    return total / (batches * BATCH) * 1e6


def measure(readings: int) -> dict[str, float]:
    return {f"us_per_reading_{n}": round(us_per_reading(n, readings), 2) for n in (1, 300, 2000)}
