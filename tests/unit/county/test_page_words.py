"""The county page says every word in both languages: each key the page uses (t("…"),
data-i18n, and the keys it builds from the data: call states, outcomes, channels, roles,
grid levels, event kinds, ticket kinds and states) is in its Chinese and its English
dictionary, and the page loads nothing from the internet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.auth.policy import Role
from gateway.tickets.model import EventKind, TicketKind, TicketState

PAGE = Path(__file__).resolve().parents[3] / "dashboards" / "county"
JS = (PAGE / "county.js").read_text(encoding="utf-8")
HTML = (PAGE / "index.html").read_text(encoding="utf-8")


def words(lang: str) -> set[str]:
    start = JS.index(f"  {lang}: {{")
    end = JS.index("\n  },", start)
    return set(re.findall(r"(?:^|[\s,{])([A-Za-z_][A-Za-z0-9_]*):\s", JS[start:end], re.M))


USED = (
    {k for k in re.findall(r'\bt\("([A-Za-z_0-9]+)"', JS) if not k.endswith("_")}
    | set(re.findall(r'data-i18n="([A-Za-z_0-9]+)"', HTML))
    | {f"st_{s}" for s in ("answered", "calling", "waiting", "not_reached")}
    | {f"out_{s}" for s in ("pending", "sending", "sent", "failed", "answered", "stopped")}
    | {f"ch_{c}" for c in ("sms", "voice", "robot", "mqtt", "api", "dashboard")}
    | {f"role_{r}" for r in [*Role, "duty", "leader"]}
    | {f"grid_{g}" for g in ("point", "group", "village", "township", "county")}
    | {f"ev_{k}" for k in EventKind}
    | {str(k) for k in TicketKind}
    | {str(s) for s in TicketState if s != TicketState.CLOSED}
    | {"closed_t", "red", "orange", "yellow", "blue"}
)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_word_the_page_uses_is_in_the_dictionary(lang: str) -> None:
    assert sorted(USED - words(lang)) == []


def test_nothing_from_the_internet() -> None:
    for text in (JS, HTML, (PAGE / "county.css").read_text(encoding="utf-8")):
        assert not re.search(r"https?://", text)
