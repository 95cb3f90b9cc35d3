"""`[health]` (when a device counts as offline) and `[[checklists]]` (patrol checklists).

The protocols' own settings (a device's `transport` table, `[sl651]`, `[gb26875]`,
`[cigem]`, `[[serial_ports]]`) live in their driver folders (drivers/registry.py lists them).
"""

from __future__ import annotations

from pydantic import Field

from drivers.link.config import Model, Name


class HealthSection(Model):
    stale_factor: float = Field(default=3.0, ge=1.0, le=100.0)  # offline after factor×interval
    check_s: float = Field(default=5.0, gt=0, le=3600)


class ChecklistItem(Model):
    id: Name
    text: str = Field(min_length=1)


class Checklist(Model):
    """A patrol checklist (巡查清单) for monitoring points of the given kinds."""

    id: Name
    name: str = Field(min_length=1)
    point_kinds: list[Name] = Field(default_factory=list)  # empty: any point
    items: list[ChecklistItem] = Field(min_length=1)
