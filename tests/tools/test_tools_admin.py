"""tools.admin finds the services where `./dev up` put them, PORT_OFFSET included."""

from __future__ import annotations

import json

import pytest

from libs.config import SERVICE_PORTS, load_settings, port_offset
from tools import admin, devstack


@pytest.mark.parametrize("offset", [0, 1, 100, 10_000])
def test_addresses_follow_port_offset_like_dev_up(offset: int) -> None:
    """With PORT_OFFSET=N every service address is the one `./dev up` serves with the same N."""
    env = admin.environment({"PORT_OFFSET": str(offset), "BRANDCLUB_ENV": "development"})
    settings = load_settings("gateway", env)
    ports = devstack.service_ports(port_offset({"PORT_OFFSET": str(offset)}))
    assert set(ports) == set(SERVICE_PORTS)
    for name, port in ports.items():
        assert port == SERVICE_PORTS[name] + offset
        assert settings.address_of(name) == f"127.0.0.1:{port}"


def test_an_explicit_address_wins_over_the_offset() -> None:
    """MEMBERSHIP_ADDR set in the shell is used as given; the others still follow the offset."""
    env = admin.environment({"PORT_OFFSET": "7", "MEMBERSHIP_ADDR": "10.0.0.5:9000"})
    assert env["MEMBERSHIP_ADDR"] == "10.0.0.5:9000"
    assert env["IDENTITY_ADDR"] == f"127.0.0.1:{SERVICE_PORTS['identity'] + 7}"


def test_no_offset_means_the_default_ports() -> None:
    """Without PORT_OFFSET the CLI uses the suite's default ports."""
    env = admin.environment({})
    assert {name: env[f"{name.upper()}_ADDR"] for name in SERVICE_PORTS} == {
        name: f"127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()}


@pytest.mark.parametrize("bad", ["abc", "-5", "99999"])
def test_invalid_port_offset_is_a_config_error_naming_it(
        bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A PORT_OFFSET that is not a small non-negative integer stops the CLI with exit code 2
    and a CONFIG_INVALID error that names PORT_OFFSET (no call is made)."""
    monkeypatch.setenv("PORT_OFFSET", bad)
    assert admin.main(["create-brand", "--name", "Acme"]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["reason"] == "CONFIG_INVALID" and "PORT_OFFSET" in error["message"]
