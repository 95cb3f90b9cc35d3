"""The [uplinks] section: problems named with their key paths, TLS paths resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.station import load_config
from gateway.core.errors import ConfigError
from tests.unit.config.test_config import GOOD, write


def test_uplinks_are_optional_and_named_when_present(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).uplinks.names() == []
    cfg = load_config(
        write(
            tmp_path,
            GOOD
            + '[uplinks.mqtt]\nhost = "county"\n[uplinks.mqtt.tls]\nca_file = "ca.pem"\n'
            + '[uplinks.influx]\nmode = "v1"\ndatabase = "db"\n',
        )
    )
    assert cfg.uplinks.names() == ["influx", "mqtt"]
    assert cfg.uplinks.mqtt is not None and cfg.uplinks.mqtt.tls is not None
    assert cfg.uplinks.mqtt.tls.ca_file == (tmp_path / "ca.pem").resolve()


def test_uplink_problems_name_their_keys(tmp_path: Path) -> None:
    text = (
        GOOD
        + '[uplinks.mqtt]\nhost = "127.0.0.1"\nport = 1883\nclient_id = "stationgw"\n'
        + 'batch_size = 0\n[uplinks.influx]\nurl = "county:8086"\n'
    )
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    found = "\n".join(e.value.problems)
    assert "uplinks.mqtt.batch_size" in found
    assert "uplinks.influx.url" in found
    fixed = text.replace("batch_size = 0", "batch_size = 10").replace(
        'url = "county:8086"', 'url = "http://county:8086"'
    )
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, fixed))
    assert e.value.problems == ["uplinks.influx: Value error, mode v2 needs bucket"]
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, fixed + 'bucket = "b"\n'))
    assert e.value.problems == [
        "uplinks.mqtt.client_id: the same as [broker] client_id on the same broker"
    ]
