"""The commit unit: one transaction stores a batch, judges it and updates tickets.

Readings, rule state, tickets, quarantine and device state of a batch commit together,
so a crash leaves either all of it or none of it; only then is the batch acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.model import Reading
from gateway.store import DeviceState, Store, Ticket
from gateway.tickets import Note, Open, Raise, TicketKind, decide, title
from rules.evaluator import RuleSet, Transition, evaluate


@dataclass(frozen=True, slots=True)
class Quarantined:
    received_at: int
    source: str
    reason: str
    payload: bytes


@dataclass(slots=True)
class Batch:
    readings: list[Reading] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    statuses: dict[str, tuple[bool, int]] = field(default_factory=dict)  # device -> (on, at)
    seen: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # device -> (at, seq)


@dataclass(frozen=True, slots=True)
class Outcome:
    new: list[Reading]
    duplicates: int
    transitions: tuple[Transition, ...]
    tickets: list[Ticket]
    devices: list[DeviceState]


class Ingestor:
    """Owns the writer store and the rules' series state (only touched on the writer)."""

    def __init__(self, store: Store, ruleset: RuleSet) -> None:
        self.store = store
        self.ruleset = ruleset
        self.state = store.rule_state()

    def commit(self, batch: Batch, now: int) -> Outcome:
        store = self.store
        with store.transaction():
            new = store.insert_readings(batch.readings)
            evaluation = evaluate(self.ruleset, self.state, new, now)
            store.save_rule_state(evaluation.updates)
            touched = [self._apply(t, now) for t in evaluation.transitions]
            for q in batch.quarantined:
                store.quarantine(q.received_at, q.source, q.reason, q.payload)
            for device, (at, seq) in batch.seen.items():
                store.device_seen(device, at, seq)
            for device, (online, at) in batch.statuses.items():
                store.device_status(device, online, at)
        self.state.update(evaluation.updates)
        ids = list(dict.fromkeys(t for t in touched if t is not None))
        tickets = [tk for i in ids if (tk := store.ticket(i)) is not None]
        return Outcome(
            new=new,
            duplicates=len(batch.readings) - len(new),
            transitions=evaluation.transitions,
            tickets=tickets,
            devices=[
                d
                for i in sorted(set(batch.seen) | set(batch.statuses))
                if (d := store.device(i)) is not None
            ],
        )

    def _apply(self, t: Transition, now: int) -> int | None:
        store = self.store
        action = decide(store.open_ticket_for(t.rule, t.device, t.metric), t)
        actor = f"rule:{t.rule}"
        if isinstance(action, Open):
            return store.open_ticket(
                kind=TicketKind.HAZARD,
                level=action.level,
                title=title(t.rule_name, action.level),
                device=t.device,
                metric=t.metric,
                rule=t.rule,
                value=t.value,
                at=now,
            )
        if isinstance(action, Raise):
            store.raise_ticket(
                action.ticket, action.level, title(t.rule_name, action.level), t.value, actor, now
            )
            return action.ticket
        if isinstance(action, Note):
            store.add_event(action.ticket, now, action.kind, actor, level=t.level, value=t.value)
            store.touch_ticket(action.ticket, now)
            return action.ticket
        return None
