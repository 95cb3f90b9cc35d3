"""The station broker as deploy/mosquitto/ configures it (passwords, ACL, TLS), run for real:
anonymous and wrong passwords refused, a device cannot publish as another, the gateway
works over TLS with username and password (and a client certificate)."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MOSQUITTO, REPO, RULES, STATION, Gateway, free_port, wait_port
from tests.integration.faults import payload, seqs_stored, wait_for

pytestmark = pytest.mark.integration

DEPLOY = REPO / "deploy" / "mosquitto"
PASSWORDS = {"stationgw": "gw-secret", "rg-01": "rg01-secret", "rg-02": "rg02-secret"}


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A station CA, the broker's certificate for 127.0.0.1 and a client certificate."""
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=station test CA",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.crt"),
    )
    for name, san in (("server", "IP:127.0.0.1,DNS:localhost"), ("gw", "DNS:stationgw")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.csr"),
        )
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n")
        openssl(
            "x509",
            "-req",
            "-in",
            str(d / f"{name}.csr"),
            "-CA",
            str(d / "ca.crt"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(ext),
            "-out",
            str(d / f"{name}.crt"),
        )


@dataclass
class SecureBroker:
    port: int
    folder: Path


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    d = tmp_path / "station"
    d.mkdir()
    make_pki(d)
    passwd = d / "passwd"
    passwd.touch()
    for user, pw in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    (d / "acl").write_text((DEPLOY / "station.acl").read_text())
    port = free_port()
    conf = (DEPLOY / "station-secure.conf").read_text()
    assert "listener 8883\n" in conf
    conf = conf.replace("/etc/mosquitto/station/", f"{d}/").replace(
        "listener 8883\n", f"listener {port} 127.0.0.1\n"
    )
    # the test's folder is root's only: keep mosquitto root; its database in the folder
    conf = f"user root\npersistence_location {d}/\n" + conf
    (d / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield SecureBroker(port, d)
    finally:
        proc.terminate()
        proc.wait(10)


def connect(b: SecureBroker, user: str | None, password: str | None, *, tls: bool = True) -> int:
    """Connect and return the CONNACK reason (0 = accepted), or -1 if no CONNACK came."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if tls:
        c.tls_set(ca_certs=str(b.folder / "ca.crt"))
    if user is not None:
        c.username_pw_set(user, password)
    result: list[int] = []
    got = threading.Event()

    def on_connect(cl: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode, p: object) -> None:
        result.append(rc.value)
        got.set()

    c.on_connect = on_connect
    try:
        c.connect("127.0.0.1", b.port, keepalive=10)
    except (OSError, ssl.SSLError):
        return -1
    c.loop_start()
    got.wait(10)
    c.loop_stop()
    c.disconnect()
    return result[0] if result else -1


def test_anonymous_and_wrong_passwords_refused(secure_broker: SecureBroker) -> None:
    assert connect(secure_broker, "rg-01", PASSWORDS["rg-01"]) == 0  # the right one works
    assert connect(secure_broker, None, None) != 0  # anonymous
    assert connect(secure_broker, "rg-01", "wrong") != 0
    assert connect(secure_broker, "nobody", "x") != 0
    assert connect(secure_broker, "rg-01", PASSWORDS["rg-01"], tls=False) == -1  # TLS only


def gateway_config(tmp_path: Path, b: SecureBroker, http_port: int) -> Path:
    toml = STATION.format(broker_port=b.port, http_port=http_port).replace(
        "[broker]\n",
        '[broker]\nusername = "stationgw"\npassword = "gw-secret"\n',
    )
    toml += (
        f'\n[broker.tls]\nca_file = "{b.folder}/ca.crt"\n'
        f'cert_file = "{b.folder}/gw.crt"\nkey_file = "{b.folder}/gw.key"\n'
    )
    path = tmp_path / "station.toml"
    path.write_text(toml)
    (tmp_path / "rules.toml").write_text(RULES)
    return path


def device(b: SecureBroker, user: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    c.tls_set(ca_certs=str(b.folder / "ca.crt"))
    c.username_pw_set(user, PASSWORDS[user])
    c.connect("127.0.0.1", b.port)
    c.loop_start()
    return c


def test_gateway_over_tls_and_devices_only_under_their_own_topic(
    tmp_path: Path, secure_broker: SecureBroker
) -> None:
    http_port = free_port()
    gw = Gateway(
        gateway_config(tmp_path, secure_broker, http_port),
        tmp_path / "data" / "station.db",
        http_port,
        tmp_path / "gateway.log",
    )
    gw.start()  # returns once /api/health says the broker (over TLS) is connected
    try:
        rg01 = device(secure_broker, "rg-01")
        rg02 = device(secure_broker, "rg-02")
        # rg-02 pretends to be rg-01: the broker drops it (MQTT 3.1.1 still acknowledges)
        rg02.publish("stations/test/rg-01/telemetry", payload(999), qos=1).wait_for_publish(5)
        rg02.publish("stations/test/rg-02/telemetry", payload(5), qos=1).wait_for_publish(5)
        rg01.publish("stations/test/rg-01/telemetry", payload(1), qos=1).wait_for_publish(5)
        wait_for(lambda: seqs_stored(gw.db) == [1], "rg-01's own report stored")
        wait_for(lambda: seqs_stored(gw.db, "rg-02") == [5], "rg-02's own report stored")
        for c in (rg01, rg02):
            c.loop_stop()
            c.disconnect()
        # rg-02's own report came after the forged one on the same connection: had the
        # forged one passed the broker, it would be stored by now
        assert 999 not in seqs_stored(gw.db)
    finally:
        gw.stop()
