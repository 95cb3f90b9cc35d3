"""Evaluate readings against rules. Pure: no IO, no clock; `now` is an argument.

    screen(ruleset, state, readings, now)   -> (flagged readings, fault transitions)
    evaluate(ruleset, state, readings, now) -> hazard and no-data transitions
    tick(ruleset, state, now)               -> transitions due to time alone

The caller screens a batch, stores it (which tells it which readings were new), evaluates
the new ones and saves the state keys marked dirty — all in one transaction. `state` is
updated in place (windows are too large to copy per reading); if the transaction fails
the caller rebuilds the state from the store.

Time: levels move in data time (the readings' timestamps). Threshold and rate rules judge
readings in time order and ignore older ones; accumulation rules take late readings into
their windows up to `lateness_ms` behind the newest one. `tick` uses `now` for `for`,
`keep_for` and no-data timers.

Cost: a series' first judged reading compiles the rules that judge it, with their state
objects, into a plan kept in the state (`State.plans`), so later readings look nothing up
per rule; readings far from every line (the steady state) skip the level machinery.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.core.model import Level, Reading
from rules import levels as lv
from rules.faults import FaultSpec, FaultState
from rules.faults import screen as screen_reading
from rules.model import (
    AccumulationRule,
    CompoundRule,
    DeviceInfo,
    Direction,
    HazardRule,
    Limits,
    NoDataRule,
    RateRule,
    Rule,
    ThresholdRule,
    level_for,
    level_with_clear,
)
from rules.reasons import ZH_FAULT, ZH_LEVEL, fault_reason, level_reason, zh_duration
from rules.windows import NEVER, PointWindow, SumWindow

SeriesKey = tuple[str, str, str]  # (rule id, device — or "@point" for compound, metric)
FAULT = "fault"  # rule id of the built-in fault detector's state keys
EPS = 1e-9  # sums of decimal rainfall are compared with this much tolerance

# What a series' first judged reading compiles for each hazard rule that judges it (see
# State.plans): (judge function, rule, state key, the key's state object, a cut below which
# — above, for "below" rules — the rule's data reaches no level, so the steady state, far
# from every line, costs no level machinery).
Entry = tuple[Callable[..., None], Any, SeriesKey, Any, float]


@dataclass(frozen=True, slots=True)
class Transition:
    """A series changed level (hazard) or a fault turned on or off (fault)."""

    kind: Literal["hazard", "fault"]
    rule: str  # rule id; built-in faults: "fault:<type>"
    rule_name: str
    device: str  # "" for a monitoring point's compound rule
    metric: str
    point: str | None
    previous: Level | None
    level: Level | None
    active: bool  # hazard: a level is held; fault: the fault is on
    value: float | None
    ts: int  # data time
    at: int  # `now` when decided
    reason_zh: str
    reason_en: str

    @property
    def rising(self) -> bool:
        if self.kind == "fault":
            return self.active
        return (self.level or 0) > (self.previous or 0)


@dataclass(slots=True)
class AccState:
    levels: lv.LevelState = field(default_factory=lv.LevelState)
    window: SumWindow = field(default_factory=SumWindow)
    last_counter: float | None = None
    last_counter_ts: int = 0


@dataclass(slots=True)
class RateState:
    levels: lv.LevelState = field(default_factory=lv.LevelState)
    window: PointWindow = field(default_factory=PointWindow)
    slopes: PointWindow = field(default_factory=PointWindow)


@dataclass(slots=True)
class SilenceState:
    last_ts: int
    active: bool = False


@dataclass
class State:
    """The evaluator's state per series key. Change the tables through `load` and `forget`
    (or `evaluate`, `tick`): `plans` hold references to their state objects."""

    levels: dict[SeriesKey, lv.LevelState] = field(default_factory=dict)  # threshold, compound
    acc: dict[SeriesKey, AccState] = field(default_factory=dict)
    rate: dict[SeriesKey, RateState] = field(default_factory=dict)
    silence: dict[SeriesKey, SilenceState] = field(default_factory=dict)
    faults: dict[SeriesKey, FaultState] = field(default_factory=dict)
    dirty: set[SeriesKey] = field(default_factory=set)
    late_dropped: int = 0  # readings too late to move any level (counted, stored)
    # (device, metric) -> what judges it, see `plans` (in memory only)
    _plans: dict[tuple[str, str], tuple[Entry, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _plans_of: RuleSet | None = field(default=None, init=False, repr=False, compare=False)

    def plans(self, ruleset: RuleSet) -> dict[tuple[str, str], tuple[Entry, ...]]:
        """The compiled entries per series for `ruleset` (emptied when the rules change)."""
        if self._plans_of is not ruleset:
            self._plans.clear()
            self._plans_of = ruleset
        return self._plans

    # --- persistence: scalars only; windows are refilled from stored readings ----------

    def dump(self, key: SeriesKey) -> str | None:
        """JSON of one key's state (None: the key no longer exists)."""
        data: dict[str, Any]
        if key in self.levels:
            data = {"t": "level", **self.levels[key].to_json()}
        elif key in self.acc:
            a = self.acc[key]
            data = {
                "t": "acc",
                **a.levels.to_json(),
                "last_counter": a.last_counter,
                "last_counter_ts": a.last_counter_ts,
            }
        elif key in self.rate:
            data = {"t": "rate", **self.rate[key].levels.to_json()}
        elif key in self.silence:
            s = self.silence[key]
            data = {"t": "silence", "last_ts": s.last_ts, "active": s.active}
        elif key in self.faults:
            data = {"t": "fault", **self.faults[key].to_json()}
        else:
            return None
        return json.dumps(data, separators=(",", ":"))

    def load(self, key: SeriesKey, text: str) -> None:
        self._plans.clear()  # it may replace a state object an entry holds
        d = json.loads(text)
        t = d.pop("t")
        if t == "level":
            self.levels[key] = lv.LevelState.from_json(d)
        elif t == "acc":
            self.acc[key] = AccState(
                lv.LevelState.from_json(d),
                last_counter=d.get("last_counter"),
                last_counter_ts=d.get("last_counter_ts") or 0,
            )
        elif t == "rate":
            self.rate[key] = RateState(lv.LevelState.from_json(d))
        elif t == "silence":
            self.silence[key] = SilenceState(d["last_ts"], d["active"])
        elif t == "fault":
            self.faults[key] = FaultState.from_json(d)

    def keys_of(self, rule: str) -> list[SeriesKey]:
        return [k for d in (self.levels, self.acc, self.rate) for k in d if k[0] == rule]

    def forget(self, keep: set[str]) -> None:
        """Drop the state of rules no longer loaded (reload); faults are always kept."""
        self._plans.clear()
        for d in (self.levels, self.acc, self.rate, self.silence):
            for k in [k for k in d if k[0] not in keep]:
                del d[k]
                self.dirty.add(k)


class RuleSet:
    """Compiled rules, indexed by series so a reading meets only the rules that concern it."""

    def __init__(
        self,
        rules: Iterable[Rule],
        devices: Mapping[str, DeviceInfo] | None = None,
        faults: Mapping[tuple[str, str], FaultSpec] | None = None,
        lateness_ms: int = 3_600_000,
    ) -> None:
        self.rules = tuple(rules)
        self.devices = dict(devices or {})
        self.faults = dict(faults or {})
        self.lateness_ms = lateness_ms
        self.by_id = {r.id: r for r in self.rules}
        hazard: dict[str, list[HazardRule]] = defaultdict(list)
        for r in self.rules:
            if isinstance(r, ThresholdRule | AccumulationRule | RateRule):
                hazard[r.metric].append(r)
        self._hazard_by_metric = {m: tuple(v) for m, v in hazard.items()}
        self.nodata = tuple(r for r in self.rules if isinstance(r, NoDataRule))
        self.compound = tuple(r for r in self.rules if isinstance(r, CompoundRule))
        self._referenced = {c.rule for r in self.compound for c in r.conditions}
        self._series: dict[tuple[str, str], tuple[HazardRule, ...]] = {}
        self._silence: dict[str, tuple[NoDataRule, ...]] = {}

    def rules_for(self, device: str, metric: str) -> tuple[HazardRule, ...]:
        key = (device, metric)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = self.matching(device, metric)
        return found

    def matching(self, device: str, metric: str) -> tuple[HazardRule, ...]:
        """`rules_for` uncached (the evaluator caches its plans per state instead)."""
        return tuple(
            r
            for r in self._hazard_by_metric.get(metric, ())
            if r.scope.devices is None or device in r.scope.devices
        )

    def nodata_for(self, device: str) -> tuple[NoDataRule, ...]:
        found = self._silence.get(device)
        if found is None:
            found = tuple(
                r for r in self.nodata if r.scope.devices is None or device in r.scope.devices
            )
            self._silence[device] = found
        return found

    def point_of(self, device: str) -> str | None:
        info = self.devices.get(device)
        return info.point if info else None

    def unit(self, device: str, metric: str) -> str:
        info = self.devices.get(device)
        return info.unit(metric) if info else ""


# --- screening: sensor faults ------------------------------------------------------------


def screen(
    ruleset: RuleSet, state: State, readings: Sequence[Reading], now: int
) -> tuple[list[Reading], list[Transition]]:
    """Flag faulty readings and report fault transitions, in time order per series."""
    out: list[Reading] = []
    transitions: list[Transition] = []
    specs = ruleset.faults
    for r in sorted(readings, key=_ts):
        spec = specs.get((r.device, r.metric))
        if spec is None:
            out.append(r)
            continue
        key = (FAULT, r.device, r.metric)
        fs = state.faults.get(key)
        if fs is None:
            fs = state.faults[key] = FaultState()
        flagged, changes = screen_reading(spec, fs, r)
        if changes or spec.stuck_after_ms is not None or spec.max_jump is not None:
            state.dirty.add(key)  # a range-only check has nothing worth saving per reading
        out.append(flagged)
        for c in changes:
            zh, en = fault_reason(c.fault, r.metric, r.value, c.active, c.detail)
            transitions.append(
                Transition(
                    "fault",
                    f"fault:{c.fault}",
                    ZH_FAULT[c.fault],
                    r.device,
                    r.metric,
                    ruleset.point_of(r.device),
                    None,
                    None,
                    c.active,
                    r.value,
                    r.ts,
                    now,
                    zh,
                    en,
                )
            )
    return out, transitions


def _ts(r: Reading) -> int:
    return r.ts


# --- evaluation --------------------------------------------------------------------------


def evaluate(
    ruleset: RuleSet, state: State, readings: Iterable[Reading], now: int
) -> list[Transition]:
    """Judge new readings (faulty ones are skipped) and return the transitions."""
    out: list[Transition] = []
    touched_points: set[str] = set()
    newest = 0
    plans = state.plans(ruleset)
    for r in sorted(readings, key=_ts):
        if ruleset.nodata:
            _heard(ruleset, state, r, now, out)
        if r.flags:
            continue
        series = (r.device, r.metric)
        plan = plans.get(series)
        if plan is None:
            plan = plans[series] = _plan(ruleset, state, r.device, r.metric)
        for judge, rule, key, st, cut in plan:
            if (
                judge is _threshold  # its steady state inline: no level, below every line
                and st.level is None
                and r.ts > st.last_ts
                and (r.value < cut if rule.direction == "above" else r.value > cut)
            ):
                st.last_ts = r.ts
                state.dirty.add(key)
                st.raw = st.pending_since = st.below_since = None  # lv.step(None)
                continue
            judge(ruleset, state, rule, key, st, cut, r, now, out)
        if plan and ruleset.compound:
            point = ruleset.point_of(r.device)
            if point is not None:
                touched_points.add(point)
        newest = max(newest, r.ts)
    if touched_points:
        out.extend(_compounds(ruleset, state, touched_points, newest, now))
    return out


def _plan(ruleset: RuleSet, state: State, device: str, metric: str) -> tuple[Entry, ...]:
    """Compile the rules that judge a series, creating their state where there is none
    (as judging its first reading did, rule by rule, before the plans)."""
    entries: list[Entry] = []
    for rule in ruleset.matching(device, metric):
        key = (rule.id, device, metric)
        if isinstance(rule, AccumulationRule):
            acc = state.acc.get(key)
            if acc is None:
                acc = state.acc[key] = AccState()
            cut = min(w.limits[0][1] if w.limits else INF for w in rule.windows)
            entries.append((_accumulation, rule, key, acc, cut))
        elif isinstance(rule, ThresholdRule):
            st = state.levels.get(key)
            if st is None:  # a new series judges its first reading whatever its time
                st = state.levels[key] = lv.LevelState(last_ts=NEVER)
            entries.append((_threshold, rule, key, st, _cut(rule.limits, rule.direction, 0.0)))
        else:
            rate = state.rate.get(key)
            if rate is None:
                rate = state.rate[key] = RateState()
            entries.append((_rate, rule, key, rate, _cut(rule.limits, rule.direction, 1.0)))
    return tuple(entries)


INF = float("inf")


def _cut(limits: Limits, direction: Direction, margin: float) -> float:
    """The lowest level's line moved away from it by `margin` × (1e-6 + 1e-9 × |line|): a
    value beyond the cut (below it for "above") reaches no level, even after rounding."""
    if not limits:
        return INF if direction == "above" else -INF
    line = limits[0][1]
    move = margin * (1e-6 + 1e-9 * abs(line))
    return line - move if direction == "above" else line + move


def tick(ruleset: RuleSet, state: State, now: int) -> list[Transition]:
    """Let time pass: `for`/`keep_for` timers complete, silent devices turn offline."""
    out: list[Transition] = []
    timed: list[tuple[SeriesKey, lv.LevelState]] = [
        *state.levels.items(),
        *((k, a.levels) for k, a in state.acc.items()),
        *((k, r.levels) for k, r in state.rate.items()),
    ]
    for key, st in timed:
        rule = ruleset.by_id.get(key[0])
        if rule is None or isinstance(rule, NoDataRule) or not lv.waiting(st):
            continue
        ch = lv.tick(st, now, rule.timing)
        if ch is not None:
            state.dirty.add(key)
            out.append(_timed(ruleset, rule, key, ch, st.last_ts, now))
    for rule in ruleset.nodata:
        for device in _nodata_devices(ruleset, rule):
            key = (rule.id, device, rule.metric or "*")
            silent = state.silence.get(key)
            if silent is None:
                state.silence[key] = SilenceState(last_ts=now)  # counting from now
                state.dirty.add(key)
                continue
            if not silent.active and now - silent.last_ts > rule.after_ms:
                silent.active = True
                state.dirty.add(key)
                zh, en = fault_reason(
                    "no_data", rule.metric or "*", None, True, zh_duration(rule.after_ms)
                )
                out.append(
                    Transition(
                        "fault",
                        rule.id,
                        rule.name,
                        device,
                        rule.metric or "",
                        ruleset.point_of(device),
                        None,
                        None,
                        True,
                        None,
                        silent.last_ts,
                        now,
                        zh,
                        en,
                    )
                )
    return out


def _nodata_devices(ruleset: RuleSet, rule: NoDataRule) -> list[str]:
    ids = rule.scope.devices if rule.scope.devices is not None else ruleset.devices.keys()
    out = []
    for d in sorted(ids):
        info = ruleset.devices.get(d)
        if rule.metric is None or info is None or any(m == rule.metric for m, _ in info.units):
            out.append(d)
    return out


def _heard(ruleset: RuleSet, state: State, r: Reading, now: int, out: list[Transition]) -> None:
    for rule in ruleset.nodata_for(r.device):
        if rule.metric is not None and rule.metric != r.metric:
            continue
        key = (rule.id, r.device, rule.metric or "*")
        s = state.silence.get(key)
        if s is None:
            s = state.silence[key] = SilenceState(last_ts=r.ts)
        elif r.ts > s.last_ts:
            s.last_ts = r.ts
        else:
            continue
        state.dirty.add(key)
        if s.active:
            s.active = False
            zh, en = fault_reason("no_data", rule.metric or "*", r.value, False, "")
            out.append(
                Transition(
                    "fault",
                    rule.id,
                    rule.name,
                    r.device,
                    rule.metric or "",
                    ruleset.point_of(r.device),
                    None,
                    None,
                    False,
                    r.value,
                    r.ts,
                    now,
                    zh,
                    en,
                )
            )


def _hazard(
    ruleset: RuleSet,
    rule: Rule,
    key: SeriesKey,
    ch: lv.Change,
    value: float | None,
    ts: int,
    now: int,
    zh: str,
    en: str,
) -> Transition:
    previous, level = ch
    device = key[1] if not key[1].startswith("@") else ""
    point = key[1][1:] if key[1].startswith("@") else ruleset.point_of(key[1])
    return Transition(
        "hazard",
        rule.id,
        rule.name,
        device,
        key[2],
        point,
        previous,
        level,
        level is not None,
        value,
        ts,
        now,
        zh,
        en,
    )


def _timed(
    ruleset: RuleSet, rule: Rule, key: SeriesKey, ch: lv.Change, ts: int, now: int
) -> Transition:
    _, level = ch
    if level is None:
        zh, en = "保持时间已过，条件已解除", "keep_for elapsed, the condition has ended"
    else:
        zh = f"条件持续满足，达到{ZH_LEVEL[level]}预警"
        en = f"the condition held long enough: {level.label}"
    return _hazard(ruleset, rule, key, ch, None, ts, now, zh, en)


def _threshold(
    ruleset: RuleSet,
    state: State,
    rule: ThresholdRule,
    key: SeriesKey,
    st: lv.LevelState,
    cut: float,
    r: Reading,
    now: int,
    out: list[Transition],
) -> None:
    if r.ts <= st.last_ts:
        state.late_dropped += 1
        return
    st.last_ts = r.ts
    state.dirty.add(key)
    raw = level_with_clear(rule.limits, rule.direction, r.value, st.level, rule.clear)
    ch = lv.step(st, raw, r.ts, rule.timing)
    if ch is None:
        return
    limit = dict(rule.limits).get(ch[1]) if ch[1] else None
    zh, en = level_reason(
        r.metric, r.metric, r.value, ruleset.unit(r.device, r.metric), ch[1], limit, rule.direction
    )
    out.append(_hazard(ruleset, rule, key, ch, r.value, r.ts, now, zh, en))


def add_to_window(rule: AccumulationRule, st: AccState, r: Reading, lateness_ms: int) -> bool:
    """Put a reading's increment into the window; False when it is too late or repeated."""
    if rule.source == "counter":
        if r.ts <= st.last_counter_ts:
            return False  # counters give increments only in time order
        last = st.last_counter
        st.last_counter, st.last_counter_ts = r.value, r.ts
        if last is None:
            return True  # the first value is the baseline
        amount = r.value - last if r.value >= last else r.value  # a reset counts from zero
    else:
        if st.levels.last_ts and r.ts <= st.levels.last_ts - lateness_ms:
            return False
        amount = r.value
    return st.window.add(r.ts, amount)


def _judge_windows(
    rule: AccumulationRule, window: SumWindow, end: int
) -> tuple[Level, int, float, float] | None:
    """The highest level the windows ending at `end` give: (level, window, total, limit)."""
    best: tuple[Level, int, float, float] | None = None
    for w in rule.windows:
        total = window.total(end - w.ms, end)
        if total + EPS < w.limits[0][1]:
            continue  # below the window's lowest level: the common case
        level = level_for(w.limits, "above", total + EPS)
        if level is not None and (best is None or level > best[0]):
            limit = next(v for lv_, v in w.limits if lv_ == level)
            best = (level, w.ms, round(total, 6), limit)
    return best


def _accumulation(
    ruleset: RuleSet,
    state: State,
    rule: AccumulationRule,
    key: SeriesKey,
    st: AccState,
    cut: float,
    r: Reading,
    now: int,
    out: list[Transition],
) -> None:
    if rule.source == "counter":
        added = add_to_window(rule, st, r, ruleset.lateness_ms)
    else:  # add_to_window's other half, one call less
        last = st.levels.last_ts
        added = not (last and r.ts <= last - ruleset.lateness_ms) and st.window.add(r.ts, r.value)
    if not added:
        state.late_dropped += 1
        return
    state.dirty.add(key)
    if r.ts >= st.levels.last_ts:  # in time order: only the windows ending now
        end = st.levels.last_ts = r.ts
        window = st.window
        held = window.nonneg_total()  # every window's sum is at most this
        below = held is not None and held + EPS < cut  # so below every lowest line
        best = None if below else _judge_windows(rule, window, end)
        before = end - rule.span_ms - ruleset.lateness_ms
        if window.ts and window.ts[0] <= before:
            window.prune(before)
        if best is None and st.levels.level is None:
            levels = st.levels
            levels.raw = levels.pending_since = levels.below_since = None  # lv.step(None)
            return
        _step_accumulation(ruleset, rule, key, st, [(end, best)], r, now, out)
        return
    end = st.levels.last_ts
    steps: list[tuple[int, tuple[Level, int, float, float] | None]] = []
    if r.ts < end:
        # a late reading: the windows that ended between it and now may have peaked
        # higher than the windows ending now; a level reached then is reached once now
        ends = st.window.ts
        lo = bisect_left(ends, r.ts)
        hi = bisect_right(ends, min(end, r.ts + rule.span_ms))
        peak: tuple[int, tuple[Level, int, float, float]] | None = None
        for e in ends[lo:hi]:
            judged = _judge_windows(rule, st.window, e)
            if judged is not None and (peak is None or judged[0] > peak[1][0]):
                peak = (e, judged)
        if peak is not None and peak[1][0] > (st.levels.level or 0):
            steps.append(peak)
    steps.append((end, _judge_windows(rule, st.window, end)))
    st.window.prune(end - rule.span_ms - ruleset.lateness_ms)
    _step_accumulation(ruleset, rule, key, st, steps, r, now, out)


def _step_accumulation(
    ruleset: RuleSet,
    rule: AccumulationRule,
    key: SeriesKey,
    st: AccState,
    steps: list[tuple[int, tuple[Level, int, float, float] | None]],
    r: Reading,
    now: int,
    out: list[Transition],
) -> None:
    for at_end, best in steps:
        ch = lv.step(st.levels, best[0] if best else None, at_end, rule.timing)
        if ch is None:
            continue
        unit = ruleset.unit(r.device, r.metric)
        if best is not None and ch[1] is not None:
            _, ms, value, limit = best
            zh, en = level_reason(
                f"{zh_duration(ms)}累计{r.metric}",
                f"{ms // 60000} min total {r.metric}",
                value,
                unit,
                ch[1],
                limit,
                "above",
            )
        else:
            span = rule.span_ms
            value = round(st.window.total(at_end - span, at_end), 6)
            zh, en = level_reason(
                f"{zh_duration(span)}累计{r.metric}",
                f"{span // 60000} min total {r.metric}",
                value,
                unit,
                None,
                None,
                "above",
            )
        out.append(_hazard(ruleset, rule, key, ch, value, at_end, now, zh, en))


def _rate(
    ruleset: RuleSet,
    state: State,
    rule: RateRule,
    key: SeriesKey,
    st: RateState,
    cut: float,
    r: Reading,
    now: int,
    out: list[Transition],
) -> None:
    if r.ts <= st.levels.last_ts:
        state.late_dropped += 1
        return
    per = rule.per_ms
    window = st.window
    n = window.push(r.ts, r.value, per, r.ts - rule.window_ms)
    levels = st.levels
    levels.last_ts = r.ts
    state.dirty.add(key)
    if levels.level is None and not rule.accel_limits:
        # the slope rounded to 9 decimals moves by at most 1e-9: beyond the cut it
        # reaches no level either way, and rounding (~0.2 µs) is left out
        quiet = n < rule.min_points
        if not quiet:
            s = window.slope_unrounded(n) if n >= 2 else 0.0
            quiet = s < cut if rule.direction == "above" else s > cut
        if quiet:
            levels.raw = levels.pending_since = levels.below_since = None  # lv.step(None)
            return
    slope, n = window.slope()
    raw = level_for(rule.limits, rule.direction, slope) if n >= rule.min_points else None
    accel: float | None = None
    if rule.accel_limits and n >= rule.min_points:
        slopes = st.slopes
        slopes.add(r.ts, slope)
        slopes.prune(r.ts - rule.window_ms)
        t0, s0 = slopes.first()
        if r.ts - t0 >= rule.window_ms // 2:
            accel = round((slope - s0) / ((r.ts - t0) / per), 9)
            a_level = level_for(rule.accel_limits, "above", accel)
            if a_level is not None and (raw is None or a_level > raw):
                raw = a_level
    ch = lv.step(st.levels, raw, r.ts, rule.timing)
    if ch is None:
        return
    unit = ruleset.unit(r.device, r.metric)
    per_unit = f"{unit}/{rule.per_label}" if unit else f"/{rule.per_label}"
    limit = dict(rule.limits).get(ch[1]) if ch[1] else None
    what = f"{zh_duration(rule.window_ms)}内{r.metric}变化速率"
    zh, en = level_reason(
        what,
        f"{r.metric} rate over {rule.window_ms // 60000} min",
        slope,
        per_unit,
        ch[1],
        limit,
        rule.direction,
    )
    if ch[1] is not None and limit is None and accel is not None:
        zh = f"{r.metric}变化加速 {accel:g} ≥ {ZH_LEVEL[ch[1]]}阈值"
        en = f"{r.metric} rate accelerating {accel:g} ≥ {ch[1].label} threshold"
    out.append(_hazard(ruleset, rule, key, ch, slope, r.ts, now, zh, en))


def _levels_at(ruleset: RuleSet, state: State, rule_id: str) -> dict[str, Level]:
    """Highest level a rule holds per monitoring point."""
    out: dict[str, Level] = {}
    for key in state.keys_of(rule_id):
        st = state.levels.get(key) or (
            state.acc[key].levels if key in state.acc else state.rate[key].levels
        )
        point = key[1][1:] if key[1].startswith("@") else ruleset.point_of(key[1])
        if st.level is not None and point is not None and st.level > out.get(point, 0):
            out[point] = st.level
    return out


def _compounds(
    ruleset: RuleSet, state: State, points: set[str], t: int, now: int
) -> list[Transition]:
    out: list[Transition] = []
    held = {rid: _levels_at(ruleset, state, rid) for rid in ruleset._referenced}
    for rule in ruleset.compound:
        for point in sorted(points):
            if rule.points is not None and point not in rule.points:
                continue
            key = (rule.id, "@" + point, "")
            st = state.levels.get(key)
            met = [held[c.rule].get(point, 0) >= c.level for c in rule.conditions]
            ok = all(met) if rule.mode == "all" else any(met)
            if st is None:
                if not ok:
                    continue
                st = state.levels[key] = lv.LevelState()
            st.last_ts = max(st.last_ts, t)
            ch = lv.step(st, rule.level if ok else None, t, rule.timing)
            state.dirty.add(key)
            if ch is None:
                continue
            names = "，".join(f"{c.rule}≥{ZH_LEVEL[c.level]}" for c in rule.conditions)
            joiner = "全部" if rule.mode == "all" else "任一"
            if ch[1] is not None:
                zh = f"{point} 组合条件{joiner}满足（{names}）"
                en = f"{point}: {rule.mode} of " + ", ".join(
                    f"{c.rule} ≥ {c.level.label}" for c in rule.conditions
                )
            else:
                zh, en = f"{point} 组合条件已不满足", f"{point}: compound condition no longer met"
            out.append(_hazard(ruleset, rule, key, ch, None, t, now, zh, en))
    return out
