"""Data windows for accumulation (sums) and rate (least-squares slope) rules.

Both keep points sorted by timestamp; a late point within the lateness bound is inserted
where it belongs. Sums use prefix sums, so each window's sum costs two bisections; a
window that holds no negative (or NaN) amount also bounds every window's sum from above by
its whole total, which costs nothing (`nonneg_total`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

NEVER = -(1 << 63)  # before any timestamp


def _ints() -> array[int]:
    return array("q")


def _floats() -> array[float]:
    return array("d")


@dataclass(slots=True)
class SumWindow:
    ts: array[int] = field(default_factory=_ints)  # arrays: 16 bytes a point, not ~70
    cum: array[float] = field(default_factory=_floats)  # prefix sums, offset by `base`
    base: float = 0.0  # the prefix sum before ts[0]
    bad_ts: int = NEVER  # the newest time of an amount that was not >= 0 (negative, NaN)

    def add(self, t: int, amount: float) -> bool:
        """Add an increment at time t; False if a point at t is already held."""
        ts = self.ts
        if not ts or t > ts[-1]:
            ts.append(t)
            self.cum.append((self.cum[-1] if self.cum else self.base) + amount)
            if not amount >= 0 and t > self.bad_ts:
                self.bad_ts = t
            return True
        i = bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            return False
        if not amount >= 0 and t > self.bad_ts:
            self.bad_ts = t
        before = self.cum[i - 1] if i > 0 else self.base
        ts.insert(i, t)
        self.cum.insert(i, before + amount)
        for j in range(i + 1, len(self.cum)):
            self.cum[j] += amount
        return True

    def total(self, start_exclusive: int, end_inclusive: int) -> float:
        """The sum of the points in (start, end]; float noise is left to the caller."""
        ts = self.ts
        j = len(ts) if ts and end_inclusive >= ts[-1] else bisect_right(ts, end_inclusive)
        i = bisect_right(ts, start_exclusive, 0, j)
        if j <= i:
            return 0.0
        return self.cum[j - 1] - (self.cum[i - 1] if i > 0 else self.base)

    def nonneg_total(self) -> float | None:
        """The sum of every point held, when none of them is negative or NaN (else None).

        Then the prefix sums never decrease, so no window's `total` (a difference of two
        of them, rounded the same way) exceeds it: a bound that costs no bisection."""
        ts = self.ts
        if not ts or self.bad_ts >= ts[0]:
            return None
        return self.cum[-1] - self.base

    def prune(self, before: int) -> None:
        """Forget points at or before `before`."""
        k = bisect_right(self.ts, before)
        if k:
            self.base = self.cum[k - 1]
            del self.ts[:k]
            del self.cum[:k]

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(slots=True)
class PointWindow:
    """Points in time order with running least-squares sums, so a slope costs O(1).

    Only appends (rate rules skip late readings) and pruning from the front; x is kept
    relative to an origin that moves whenever the window empties or drifts far.
    """

    ts: array[int] = field(default_factory=_ints)
    values: array[float] = field(default_factory=_floats)
    origin: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0
    start: int = 0  # index of the first live point (pruned ones are dropped in bulk)

    def add(self, t: int, v: float, per_ms: int = 1) -> bool:
        ts = self.ts
        if ts and t <= ts[-1]:
            return False
        if self.start >= len(ts):
            self._reset(t)
        ts.append(t)
        self.values.append(v)
        x = (t - self.origin) / per_ms
        self.sx += x
        self.sy += v
        self.sxx += x * x
        self.sxy += x * v
        return True

    def push(self, t: int, v: float, per_ms: int, before: int) -> int:
        """`add` then `prune(before)` in one call (a rate rule's step); the live count.
        `add`'s body is written out here on purpose: this runs once per reading per rate
        rule, on the path `stationgw bench`'s rules ratio measures."""
        ts = self.ts
        if not ts or t > ts[-1]:
            if self.start >= len(ts):
                self._reset(t)
            ts.append(t)
            self.values.append(v)
            x = (t - self.origin) / per_ms
            self.sx += x
            self.sy += v
            self.sxx += x * x
            self.sxy += x * v
        if ts[self.start] <= before:
            self.prune(before, per_ms)
        return len(ts) - self.start

    def _reset(self, origin: int) -> None:
        del self.ts[:]
        del self.values[:]
        self.start = 0
        self.origin = origin
        self.sx = self.sy = self.sxx = self.sxy = 0.0

    def prune(self, before: int, per_ms: int = 1) -> None:
        """Forget points at or before `before`."""
        ts, values = self.ts, self.values
        i = self.start
        while i < len(ts) and ts[i] <= before:
            x = (ts[i] - self.origin) / per_ms
            v = values[i]
            self.sx -= x
            self.sy -= v
            self.sxx -= x * x
            self.sxy -= x * v
            i += 1
        self.start = i
        if i > 64 and i * 2 > len(ts):  # compact, and re-sum against a fresh origin
            live_t, live_v = ts[i:], values[i:]
            self._reset(live_t[0] if live_t else 0)
            for t, v in zip(live_t, live_v, strict=True):
                self.add(t, v, per_ms)

    def __len__(self) -> int:
        return len(self.ts) - self.start

    def first(self) -> tuple[int, float]:
        return self.ts[self.start], self.values[self.start]

    def slope(self) -> tuple[float, int]:
        """Least-squares change per `per_ms` (as added) of the live points, and their count."""
        n = len(self)
        if n < 2:
            return 0.0, n
        return round(self.slope_unrounded(n), 9), n

    def slope_unrounded(self, n: int) -> float:
        """`slope` before rounding to 9 decimals (which costs ~0.2 µs); n = len(self) >= 2."""
        sxx = self.sxx - self.sx * self.sx / n
        if sxx <= 1e-12:
            return 0.0
        return (self.sxy - self.sx * self.sy / n) / sxx
