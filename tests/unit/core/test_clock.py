"""The gateway's clock: wall time at start, advanced monotonically; jumps of the system
clock logged, not followed; devices far from it warned about."""

from __future__ import annotations

import pytest

from gateway.core import clock
from gateway.core.clock import SKEW_MS, SteadyClock

H = 3_600_000_000_000  # one hour in ns


class Box:
    def __init__(self) -> None:
        self.wall = 1_780_000_000_000 * 1_000_000
        self.mono = 5_000_000_000

    def step(self, ns: int, jump: int = 0) -> None:
        self.mono += ns
        self.wall += ns + jump


@pytest.mark.parametrize("jump", [H, -H])
def test_a_jump_of_the_system_clock_moves_nothing(
    jump: int, caplog: pytest.LogCaptureFixture
) -> None:
    box = Box()
    c = SteadyClock(lambda: box.wall, lambda: box.mono)
    start = c.now_ms()
    box.step(10_000_000_000)
    assert c.now_ms() - start == 10_000  # ten seconds, as the monotonic clock says
    assert c.check() == 0 and "moved" not in caplog.text
    box.step(5_000_000_000, jump)  # the box's clock jumps while 5 s pass
    assert c.now_ms() - start == 15_000  # deadlines and durations: unmoved
    assert c.check() == jump // 1_000_000
    assert f"moved {jump / 1e9:+.1f} s" in caplog.text
    c.check()
    assert caplog.text.count("moved") == 1  # said once per jump


def test_a_box_that_started_with_an_unset_clock_takes_the_first_sane_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Box()
    box.wall = 86_400 * 10**9  # 1970-01-02: no real-time clock, NTP not through yet
    c = SteadyClock(lambda: box.wall, lambda: box.mono)
    box.step(1_000_000_000, 1_780_000_000_000 * 1_000_000)  # NTP steps the clock
    assert c.check() == 0 and "adopted" in caplog.text
    assert c.now_ms() == box.wall // 1_000_000
    box.step(1_000_000_000, H)  # a later jump of a set clock is not followed
    assert c.check() == H // 1_000_000


@pytest.mark.parametrize(
    ("lead", "warned"),
    [(0, None), (SKEW_MS, None), (SKEW_MS + 1, SKEW_MS + 1), (-H // 10**6, -H // 10**6)],
)
def test_skew(lead: int, warned: int | None) -> None:
    now = 1_780_000_000_000
    assert clock.skew(now + lead, now) == warned
