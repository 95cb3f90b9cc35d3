"""Rules: CPU and memory of the pure evaluator with 1, 300 and 2,000 rules.

The workload of the rules issue: 5,000 series (8 devices × 625 metrics), rules of mixed
kinds — thresholds with a clear band, accumulations over 1 h / 3 h / 24 h windows, rates
over 6 h — one per metric in turn, each judging its metric on all 8 devices, so 2,000
rules put about three rules on every series. Readings arrive once a minute per series in
batches of 1,000, like the pipeline's, with values below every level (the steady state:
no transitions). Nothing but `evaluate` is timed; memory is the evaluator state traced
after the run, per rule.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from gateway.core.model import Level, Reading
from rules.evaluator import RuleSet, State, evaluate
from rules.model import AccumulationRule, RateRule, Rule, ThresholdRule, Window

DEVICES, METRICS = 8, 625
BATCH = 1000
HOUR = 3_600_000


def mixed_rules(count: int) -> RuleSet:
    rules: list[Rule] = []
    for k in range(count):
        m = f"m{k % METRICS}"
        kind = k % 3
        if kind == 0:
            limits = (
                (Level.BLUE, 50.0),
                (Level.YELLOW, 70.0),
                (Level.ORANGE, 80.0),
                (Level.RED, 90.0),
            )
            rules.append(ThresholdRule(f"t{k}", "t", m, "above", limits, clear=1.0))
        elif kind == 1:
            windows = (
                Window(HOUR, ((Level.BLUE, 3000.0),)),
                Window(3 * HOUR, ((Level.BLUE, 9000.0),)),
                Window(24 * HOUR, ((Level.RED, 1e9),)),
            )
            rules.append(AccumulationRule(f"a{k}", "a", m, windows))
        else:
            rules.append(
                RateRule(f"r{k}", "r", m, 6 * HOUR, 24 * HOUR, "d", "above", ((Level.BLUE, 1e6),))
            )
    return RuleSet(rules)


def _readings(minutes: int) -> list[Reading]:
    rng = random.Random(1)
    t0 = 1_780_000_000_000
    return [
        Reading(f"d{d}", f"m{m}", t0 + k * 60_000, rng.random() * 45)
        for k in range(minutes)
        for m in range(METRICS)
        for d in range(DEVICES)
    ]


def kb_per_rule(rules: int, minutes: int) -> float:
    """Evaluator state held after the run, per rule (traced: it slows allocation)."""
    rs, state = mixed_rules(rules), State()
    data = _readings(minutes)
    gc.collect()
    tracemalloc.start()
    for i in range(0, len(data), BATCH):
        chunk = data[i : i + BATCH]
        evaluate(rs, state, chunk, chunk[-1].ts)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / rules / 1000


def measure(readings: int) -> dict[str, float]:
    minutes = max(2, readings // (DEVICES * METRICS))
    out: dict[str, float] = {}
    for n in (1, 300, 2000):
        rs, state = mixed_rules(n), State()
        data = _readings(minutes)
        t = time.process_time()
        for i in range(0, len(data), BATCH):
            chunk = data[i : i + BATCH]
            evaluate(rs, state, chunk, chunk[-1].ts)
        out[f"us_per_reading_{n}"] = round((time.process_time() - t) / len(data) * 1e6, 2)
        out[f"kb_per_rule_{n}"] = round(kb_per_rule(n, minutes), 1)
    return out
