"""Realistic 1-minute series for storage measurements and tests.

The values come from the firmware stubs' own scripts (`firmware_stubs.scenario`): keyframes,
uniform noise and rounding to the device's decimals, as `rainstorm.toml` sets them for a
rain gauge (0.1 mm, noise ±0.1, storms), a water-level gauge (0.01 m, noise ±0.01) and a
crack meter (0.001 mm, noise ±0.005, slow creep). Timestamps are what the stub sends: the
device's clock when it wakes on its 1-minute schedule, so the report is a few milliseconds
late (asyncio's wake-up jitter, 0-5 ms here) and the clock runs a fixed offset off.
"""

from __future__ import annotations

import random

from firmware_stubs.scenario import MetricScript

MINUTE_MS = 60_000
DAY_S = 86_400

H = 3600
# a storm of ~4 h every 3 days, dry in between
_RAIN = ((0, 0.0), (3 * DAY_S - 4 * H, 0.0), (3 * DAY_S - 3 * H, 2.5), (3 * DAY_S, 0.0))
# the river rises during the storm and falls back over the next day
_LEVEL = ((0, 3.25), (20 * H, 2.10), (3 * DAY_S - 3 * H, 2.12), (3 * DAY_S - H, 3.3))

SCRIPTS: dict[str, MetricScript] = {
    "rain_mm": MetricScript("rain_mm", _RAIN, noise=0.1, repeat_s=3 * DAY_S, decimals=1, floor=0.0),
    "level_m": MetricScript("level_m", _LEVEL, noise=0.01, repeat_s=3 * DAY_S, decimals=2),
    # a slope creeping ~0.5 mm over 10 days
    "crack_mm": MetricScript(
        "crack_mm", ((0, 12.000), (10 * DAY_S, 12.500)), noise=0.005, decimals=3
    ),
}


def realistic_series(
    metric: str, t0_ms: int, minutes: int, seed: int = 0
) -> list[tuple[int, float, int]]:
    """`minutes` reports of one metric's stub script from t0: (ts, value, flags)."""
    script = SCRIPTS[metric]
    rng = random.Random(f"{seed}/{metric}")
    offset_ms = rng.randint(0, 1500)  # the device clock runs up to 1.5 s fast
    out = []
    for m in range(minutes):
        ts = t0_ms + m * MINUTE_MS + offset_ms + rng.randint(0, 5)
        out.append((ts, script.value_at(m * 60.0, rng), 0))
    return out
