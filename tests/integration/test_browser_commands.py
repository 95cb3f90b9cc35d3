"""The Devices page's command buttons: a technician queues a clock setting for an SL651
station from the page; a viewer sees no buttons. Real Chromium against `stationgw run`."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, add_user
from tests.integration.test_browser import browser, log_in, shots, visit  # noqa: F401

pytestmark = pytest.mark.integration

SL651 = """
[[devices]]
id = "hs-01"
name = "上坪河水文站"
kind = "hydrology"
point = "p1"
metrics.level_m = { unit = "m", min = 0, max = 50 }
transport = { kind = "sl651", address = "0012345601", elements = { Z = "level_m" } }

[sl651]
listen = { host = "127.0.0.1", port = 0 }
"""


def test_technician_queues_a_command_from_the_devices_page(
    gateway: Gateway,
    browser: Any,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    text = gateway.config.read_text()
    head, sep, rest = text.partition("[broker]")
    gateway.config.write_text(head + SL651 + "\n" + sep + rest)
    gateway.start()
    viewer = log_in(
        browser, gateway, "screen", add_user(gateway.db, "screen", "viewer"), (1366, 768)
    )
    visit(viewer, "devices", shots, "viewer-commands")
    viewer.locator("tr[data-device=hs-01]").wait_for()
    assert viewer.locator("button[data-command]").count() == 0

    tech = log_in(browser, gateway, "sun", add_user(gateway.db, "sun", "technician"), (1366, 768))
    visit(tech, "devices", shots, "tech-commands")
    row = tech.locator("tr[data-device=hs-01]")
    assert row.locator("button[data-command]").all_inner_texts() == [
        "校时",
        "立即上报",
        "软件版本",
        "状态报警",
    ]
    assert tech.locator("tr[data-device=rg-01] button[data-command]").count() == 0  # MQTT
    row.locator("button[data-command='clock.set']").click()
    tech.locator("#notice[data-bad='0']").wait_for()
    assert "上坪河水文站：校时 已排队" in tech.locator("#notice").inner_text()
    tech.screenshot(path=str(shots / "tech-command-queued.png"), full_page=True)
    with closing(gateway.api("viewer")) as api:
        (c,) = api.get("/api/devices/hs-01/commands").json()
    assert (c["name"], c["state"], c["by"]) == ("clock.set", "queued", "sun")
