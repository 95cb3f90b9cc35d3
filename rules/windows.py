"""Data windows for accumulation (sums) and rate (least-squares slope) rules.

Both keep points sorted by timestamp; a late point within the lateness bound is inserted
where it belongs. Sums use prefix sums, so each window's sum costs two bisections.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field


@dataclass(slots=True)
class SumWindow:
    ts: list[int] = field(default_factory=list)
    cum: list[float] = field(default_factory=list)  # prefix sums, offset by `base`
    base: float = 0.0  # the prefix sum before ts[0]

    def add(self, t: int, amount: float) -> bool:
        """Add an increment at time t; False if a point at t is already held."""
        ts = self.ts
        if not ts or t > ts[-1]:
            ts.append(t)
            self.cum.append((self.cum[-1] if self.cum else self.base) + amount)
            return True
        i = bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            return False
        before = self.cum[i - 1] if i > 0 else self.base
        ts.insert(i, t)
        self.cum.insert(i, before + amount)
        for j in range(i + 1, len(self.cum)):
            self.cum[j] += amount
        return True

    def total(self, start_exclusive: int, end_inclusive: int) -> float:
        j = bisect_right(self.ts, end_inclusive)
        i = bisect_right(self.ts, start_exclusive)
        if j <= i:
            return 0.0
        lo = self.cum[i - 1] if i > 0 else self.base
        return round(self.cum[j - 1] - lo, 6)

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
    ts: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, t: int, v: float) -> bool:
        ts = self.ts
        if not ts or t > ts[-1]:
            ts.append(t)
            self.values.append(v)
            return True
        i = bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            return False
        ts.insert(i, t)
        self.values.insert(i, v)
        return True

    def prune(self, before: int) -> None:
        k = bisect_right(self.ts, before)
        if k:
            del self.ts[:k]
            del self.values[:k]

    def slope(self, start_exclusive: int, end_inclusive: int, per_ms: int) -> tuple[float, int]:
        """Least-squares change per `per_ms` of the points in the window, and their count."""
        i = bisect_right(self.ts, start_exclusive)
        j = bisect_right(self.ts, end_inclusive)
        n = j - i
        if n < 2:
            return 0.0, n
        t0 = self.ts[i]
        xs = [(t - t0) / per_ms for t in self.ts[i:j]]
        ys = self.values[i:j]
        mx = sum(xs) / n
        my = sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return 0.0, n
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        return round(sxy / sxx, 9), n

    def __len__(self) -> int:
        return len(self.ts)
