"""Fixtures for the integration tests: Mosquitto on the deploy configuration itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, RULES, STATION, Gateway, free_port
from tests.integration.faults import Broker

DEPLOY = REPO / "deploy" / "mosquitto" / "stationgw.conf"


class DeployBroker(Broker):
    """deploy/mosquitto/stationgw.conf as shipped; only its port and persistence folder
    rewritten for the test (and `user root`, see faults.Broker). Can be stopped and
    started again on the same port."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        listener = "listener 1883 127.0.0.1"
        shipped = DEPLOY.read_text()
        assert listener in shipped
        conf = shipped.replace(listener, f"listener {self.port} 127.0.0.1")
        self.conf.write_text(conf + f"persistence_location {folder}/\nuser root\n")


@pytest.fixture
def deploy_broker(tmp_path: Path) -> Iterator[DeployBroker]:
    b = DeployBroker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def deploy_gw(tmp_path: Path, deploy_broker: DeployBroker) -> Iterator[Gateway]:
    """`stationgw run` behind the deploy broker, started."""
    config = tmp_path / "station.toml"
    http_port = free_port()
    config.write_text(STATION.format(broker_port=deploy_broker.port, http_port=http_port))
    (tmp_path / "rules.toml").write_text(RULES)
    g = Gateway(config, tmp_path / "data" / "station.db", http_port, tmp_path / "gateway.log")
    g.start()
    try:
        yield g
    finally:
        g.stop()
