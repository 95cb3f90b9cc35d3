"""Every query of the Grafana dashboards names measurements, tags and fields that the
InfluxDB uplink writes. What it writes is not copied here: sample rows go through the
uplink's own encoder and the lines that come out are parsed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.uplinks.line_protocol import LineEncoder, Place
from gateway.uplinks.outbox import Row

DASHBOARDS = sorted((Path(__file__).resolve().parents[3] / "dashboards" / "grafana").glob("*.json"))
T0 = 1_780_000_000_000


def _split(s: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped with a backslash."""
    return re.split(rf"(?<!\\){re.escape(sep)}", s)


def written() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (tag keys, field keys), from lines the uplink's encoder produces for
    rows with every optional part present (a flagged reading, an event with a value)."""
    enc = LineEncoder("st", {"rg-01": Place("p1", "v1")}, {"p1": "v1"})
    event = {
        "ticket": {"id": 1, "kind": "warning", "level": "red", "point": "p1", "device": "rg-01"},
        "event": {"kind": "warning_issued", "value": 2.5},
    }
    rows = [
        Row(1, "r", "rg-01", "rain_mm", T0, 1.5, 0, None),
        Row(2, "r", "rg-01", "rain_mm", T0 + 1, 99.0, 1, None),
        Row(3, "e", "rg-01", None, T0, None, None, json.dumps(event)),
    ]
    out: dict[str, tuple[set[str], set[str]]] = {}
    for line in enc.lines(rows):
        head, fields, _ts = _split(line, " ")
        measurement, *tags = _split(head, ",")
        tag_keys, field_keys = out.setdefault(measurement, (set(), set()))
        tag_keys |= {t.split("=", 1)[0] for t in tags}
        field_keys |= {f.split("=", 1)[0] for f in _split(fields, ",")}
    return out


def test_the_schema_is_read_from_the_encoder() -> None:
    schema = written()
    assert schema["reading"] == (
        {"station", "device", "metric", "point", "village"},
        {"value", "flags"},
    )
    assert "level" in schema["ticket_event"][0] and "ticket_id" in schema["ticket_event"][1]


def _targets(panels: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p in panels:
        out += [(p["title"], t) for t in p.get("targets", [])]
        out += _targets(p.get("panels", []))
    return out


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_names_what_the_uplink_writes(path: Path) -> None:
    dash = json.loads(path.read_text(encoding="utf-8"))
    schema = written()
    targets = _targets(dash["panels"])
    assert targets, f"{path.name}: no panel queries"
    for title, t in targets:
        where = f"{path.name}: panel {title!r} query {t['refId']}"
        assert t.get("rawQuery") is False, f"{where}: use the query builder, not raw InfluxQL"
        m = t["measurement"]
        assert m in schema, f"{where}: measurement {m!r} is not written"
        tags, fields = schema[m]
        for part in t["select"]:
            for step in part:
                if step["type"] == "field":
                    assert step["params"][0] in fields, f"{where}: no field {step['params'][0]!r}"
        for g in t["groupBy"]:
            if g["type"] == "tag":
                assert g["params"][0] in tags, f"{where}: no tag {g['params'][0]!r}"
        for cond in t.get("tags", []):
            assert cond["key"] in tags, f"{where}: no tag {cond['key']!r}"
        alias_tags = re.findall(r"\$tag_(\w+)", t.get("alias", ""))
        assert set(alias_tags) <= tags, f"{where}: alias names {alias_tags}"
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]
        found = re.fullmatch(
            r'SHOW TAG VALUES FROM "(\w+)" WITH KEY = "(\w+)"(?: WHERE "(\w+)" =~ /\^\$\w+\$/)?', q
        )
        assert found, f"{path.name}: variable {v['name']}: unexpected query {q!r}"
        m, key, cond = found.groups()
        assert m in schema and key in schema[m][0], f"{path.name}: variable {v['name']}: {q}"
        assert cond is None or cond in schema[m][0], f"{path.name}: variable {v['name']}: {q}"


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS
