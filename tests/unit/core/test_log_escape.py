"""Log lines escape control and bidirectional characters (issue 21, item 6): a device's
topic or name cannot forge a line, drive the terminal or show text reversed."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway.core.logs import EscapingFormatter, JsonFormatter, escape

TOPIC = "stations/test/rg\u202e10-gr/telemetry\nFAKE 00:00:00 CRITICAL forged\x1b[2J\u2066"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x1b[31mred\x07", "\\x1b[31mred\\x07"),
        ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
        ("rg\u202e01 \u2066x\u2069 \u200f\u061c", "rg\\u202e01 \\u2066x\\u2069 \\u200f\\u061c"),
        ("雨量计 rain_mm 3.5 °C", "雨量计 rain_mm 3.5 °C"),  # printable text untouched
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


@pytest.mark.parametrize("formatter", [EscapingFormatter("%(message)s"), JsonFormatter()])
def test_a_hostile_topic_stays_on_one_escaped_line(formatter: logging.Formatter) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.escape")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("quarantined (topic %s): %s", TOPIC, "reason")
    finally:
        logger.removeHandler(handler)
    line = out.getvalue()
    assert line.count("\n") == 1 and line.endswith("\n")
    for raw in ("\u202e", "\u2066", "\x1b"):
        assert raw not in line
    text = json.loads(line)["msg"] if line.startswith("{") else line
    assert "rg\\u202e10-gr/telemetry\\nFAKE" in text and "\\x1b[2J\\u2066" in text
