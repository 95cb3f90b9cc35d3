"""The MQTT uplink over TLS with a username and password, against a real Mosquitto whose
certificates are made here with openssl (a CA and a server certificate for 127.0.0.1):
the readings arrive; a wrong password is refused, shown in the status and nothing is
confirmed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MOSQUITTO, free_port, wait_port
from tests.integration.county import Station, reading_batch, station_config

pytestmark = pytest.mark.integration


def _certs(folder: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (folder / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )


@pytest.fixture
def tls_broker(tmp_path: Path) -> Any:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed: run the README test command (scripts/test)")
    folder = tmp_path / "tls"
    folder.mkdir()
    _certs(folder)
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(folder / "passwd"), "qingshui", "s3cret"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "user root\n"  # as root it would drop to `mosquitto`, who cannot read tmp_path
        f"cafile {folder}/ca.crt\ncertfile {folder}/server.crt\nkeyfile {folder}/server.key\n"
        f"allow_anonymous false\npassword_file {folder}/passwd\n"
        "log_dest stderr\nlog_type error\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port, folder / "ca.crt"
    finally:
        proc.terminate()
        proc.wait(10)


def _run(tmp_path: Path, port: int, ca: Path, password: str) -> dict[str, Any]:
    cfg = station_config(
        tmp_path,
        {
            "mqtt": {
                "host": "127.0.0.1",
                "port": port,
                "username": "qingshui",
                "password": password,
                "tls": {"ca_file": str(ca)},
            }
        },
    )

    async def go() -> dict[str, Any]:
        st = Station(cfg)
        await st.uplinks.start()
        link = st.uplinks.links[0]
        try:
            await st.ingest(reading_batch(0, 1000))
            if password == "s3cret":
                await st.until(lambda: st.uplinks.feeds["mqtt"].confirmed >= 1000)
            else:
                await st.until(lambda: link.status()["last_error"] is not None)
            return await st.status()
        finally:
            await st.close()

    return asyncio.run(go())


def test_tls_and_password(tmp_path: Path, tls_broker: tuple[int, Path]) -> None:
    port, ca = tls_broker
    good = _run(tmp_path / "good", port, ca, "s3cret")["uplinks"]["mqtt"]
    assert good["connected"] is True and good["confirmed_seq"] == 1000
    bad = _run(tmp_path / "bad", port, ca, "wrong")["uplinks"]["mqtt"]
    assert bad["connected"] is False and bad["confirmed_seq"] == 0
    assert "authori" in str(bad["last_error"]).lower(), bad
