"""The commit unit: one transaction stores a batch, judges it and updates tickets.

Readings (flagged by fault screening), rule state, tickets, quarantine and device state
of a batch commit together, so a crash leaves either all of it or none of it; only then
is the batch acknowledged. The rules' state lives here, on the writer thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.batch import Batch
from gateway.core.model import Level, Reading
from gateway.ingest import seq_gaps, untimed
from gateway.storage.store import DeviceState
from gateway.tickets.model import Action, Note, Open, Raise, decide, title
from gateway.tickets.store import StationStore, Ticket
from gateway.uplinks import outbox
from rules.evaluator import RuleSet, SeriesKey, State, Transition, evaluate, screen, tick
from rules.levels import LevelState
from rules.model import AccumulationRule, RateRule
from rules.windows import PointWindow

if TYPE_CHECKING:
    from gateway.tickets.desk import Desk

log = logging.getLogger("stationgw.ingest")


@dataclass(frozen=True, slots=True)
class Outcome:
    new: list[Reading]
    duplicates: int
    transitions: tuple[Transition, ...]
    tickets: list[Ticket]
    devices: list[DeviceState]


def restore(ruleset: RuleSet, store: StationStore) -> State:
    """Rule state from the store: scalars as saved, windows refilled from stored readings."""
    state = State()
    for key, data in store.rule_state():
        state.load(key, data)
    for key, acc in state.acc.items():
        rule = ruleset.by_id.get(key[0])
        if not isinstance(rule, AccumulationRule):
            continue
        last = acc.levels.last_ts
        since = last - rule.span_ms - ruleset.lateness_ms
        if rule.source == "counter":
            previous = None
            for r in store.history(key[1], key[2], since):
                if previous is not None:
                    step = r.value - previous if r.value >= previous else r.value
                    acc.window.add(r.ts, step)
                previous = r.value
        else:
            for r in store.history(key[1], key[2], since):
                acc.window.add(r.ts, r.value)
    for key, rate in state.rate.items():
        rule = ruleset.by_id.get(key[0])
        if not isinstance(rule, RateRule):
            continue
        rate.window = PointWindow()
        for r in store.history(key[1], key[2], rate.levels.last_ts - rule.window_ms):
            rate.window.add(r.ts, r.value, rule.per_ms)
    return state


class Ingestor:
    """Owns the writer store and the rules' state (only touched on the writer thread)."""

    def __init__(self, store: StationStore, ruleset: RuleSet, desk: Desk | None = None) -> None:
        self.store = store
        self.ruleset = ruleset
        self.desk = desk  # warnings, calls and deliveries in the same transactions
        self._by_point: dict[str, list[tuple[int, SeriesKey]]] = {}
        self._by_point_sizes: tuple[int, ...] = ()
        if desk is not None:
            desk.point_level = self.point_level
        self.state = restore(ruleset, store)
        self._stale = False
        self.gap_grace_ms = seq_gaps.GRACE_MS  # a sequence gap is judged lost after this
        self._forgot_at = 0

    def replace_rules(self, ruleset: RuleSet) -> None:
        """Swap the rules; a rule keeps its state where its id and kind are unchanged."""
        old = self.ruleset.by_id
        keep = {r.id for r in ruleset.rules if r.id in old and old[r.id].kind == r.kind}
        self.ruleset = ruleset
        self.state.forget(keep)
        with self.store.transaction():
            self._save_state()
        self.state = restore(ruleset, self.store)

    def commit(self, batch: Batch, now: int, *, device_states: bool = True) -> Outcome:
        """StationStore, judge and ticket a batch in one transaction. `device_states=False` skips
        reading back the devices' state for the SSE `device` event (nobody listens)."""
        if self._stale:  # a failed transaction left the in-memory state ahead of the store
            self.state = restore(self.ruleset, self.store)
            self._stale = False
        store = self.store
        try:
            self._touched_by_desk()
            with store.transaction():
                incoming = batch.readings
                if batch.untimed:  # reports sent without a device time
                    incoming = untimed.place(store.conn, incoming, batch.untimed)
                readings, faults = screen(self.ruleset, self.state, incoming, now)
                new = store.insert_readings(readings)
                outbox.add_readings(store.conn, new)  # to the county uplinks, same commit
                store.record_rollups(new)  # hourly buckets, in this same transaction
                transitions = faults + evaluate(self.ruleset, self.state, new, now)
                touched = [self._apply(t, now) for t in transitions]
                self._save_state()
                for q in batch.quarantined:
                    store.quarantine(q.received_at, q.source, q.reason, q.payload)
                for device, (at, seq) in batch.seen.items():
                    store.device_seen(device, at, seq)
                seq_gaps.record(store, batch.seqs, now)
                for device, (online, at) in batch.statuses.items():
                    store.device_status(device, online, at)
        except BaseException:
            self._stale = True
            raise
        return Outcome(
            new=new,
            duplicates=len(batch.readings) - len(new),
            transitions=tuple(transitions),
            tickets=self._tickets(touched + self._touched_by_desk()),
            devices=[
                d
                for i in sorted(set(batch.seen) | set(batch.statuses))
                if (d := store.device(i)) is not None
            ]
            if device_states
            else [],
        )

    def tick(self, now: int) -> Outcome:
        """Timers and no-data rules: time passing alone can change levels."""
        if self._stale:
            self.state = restore(self.ruleset, self.store)
            self._stale = False
        try:
            self._touched_by_desk()
            with self.store.transaction():
                transitions = tick(self.ruleset, self.state, now)
                touched = [self._apply(t, now) for t in transitions]
                seq_gaps.settle(self.store, now, self.gap_grace_ms)
                if now - self._forgot_at > 60_000:
                    untimed.forget(self.store.conn, now)
                    self._forgot_at = now
                self._save_state()
                if self.desk is not None:
                    self.desk.tick(now)  # escalations due: persisted with their calls
        except BaseException:
            self._stale = True
            raise
        touched += self._touched_by_desk()
        return Outcome([], 0, tuple(transitions), self._tickets(touched), [])

    def point_level(self, point: str) -> Level | None:
        """The highest level any hazard rule holds now at a monitoring point."""
        st = self.state
        sizes = (id(st), len(st.levels), len(st.acc), len(st.rate))
        if sizes != self._by_point_sizes:  # series appeared or went: index them again
            devices = self.ruleset.devices
            index: dict[str, list[tuple[int, SeriesKey]]] = {}
            tables: tuple[Mapping[SeriesKey, object], ...] = (st.levels, st.acc, st.rate)
            for n, table in enumerate(tables):
                for key in table:
                    device = key[1]
                    if device.startswith("@"):
                        where: str | None = device[1:]
                    else:
                        info = devices.get(device)
                        where = info.point if info else None
                    if where is not None:
                        index.setdefault(where, []).append((n, key))
            self._by_point = index
            self._by_point_sizes = sizes
        best: Level | None = None
        for n, key in self._by_point.get(point, ()):
            if n == 0:
                ls: LevelState | None = st.levels.get(key)
            elif n == 1:
                acc = st.acc.get(key)
                ls = acc.levels if acc else None
            else:
                rate = st.rate.get(key)
                ls = rate.levels if rate else None
            if ls is not None and ls.level is not None and (best is None or ls.level > best):
                best = ls.level
        return best

    def _touched_by_desk(self) -> list[int | None]:
        if self.desk is None:
            return []
        out: list[int | None] = list(self.desk.touched)
        self.desk.touched.clear()
        return out

    def _save_state(self) -> None:
        dirty = self.state.dirty
        if dirty:
            self.store.save_rule_state((k, self.state.dump(k)) for k in dirty)
            dirty.clear()

    def _tickets(self, touched: list[int | None]) -> list[Ticket]:
        ids = list(dict.fromkeys(t for t in touched if t is not None))
        return [tk for i in ids if (tk := self.store.ticket(i)) is not None]

    def _apply(self, t: Transition, now: int) -> int | None:
        action = decide(
            self.store.open_ticket_for(t.rule, t.device or None, t.metric or None, t.point), t
        )
        ticket_id = self._act(t, action, now)
        if self.desk is not None:
            self.desk.after(t, action, ticket_id, now)
        return ticket_id

    def _act(self, t: Transition, action: Action | None, now: int) -> int | None:
        store = self.store
        device = t.device or None
        metric = t.metric or None
        actor = f"rule:{t.rule}"
        reason = f"{t.reason_zh} / {t.reason_en}"
        if isinstance(action, Open):
            return store.open_ticket(
                kind=action.kind,
                level=action.level,
                title=title(t, action.level),
                device=device,
                metric=metric,
                point=t.point,
                rule=t.rule,
                value=t.value,
                reason=reason,
                actor=actor,
                at=now,
                ts=t.ts,
            )
        if isinstance(action, Raise):
            store.raise_ticket(
                action.ticket,
                action.level,
                title(t, action.level),
                t.value,
                reason,
                actor,
                now,
                ts=t.ts,
            )
            return action.ticket
        if isinstance(action, Note):
            store.add_event(
                action.ticket,
                now,
                action.kind,
                actor,
                level=t.level,
                value=t.value,
                reason=reason,
                ts=t.ts,
            )
            store.touch_ticket(action.ticket, now)
            return action.ticket
        return None
