"""Operator options that shape the core: the per-address session cap (``--max-clients-per-host``)."""

from __future__ import annotations

import pytest

from roomcast.hub.cli import parse_args
from roomcast.hub.core import HubConfig
from roomcast.shared import events, limits
from tests.unit.hubwire import Hub, Peer, TextPeer, envelope_peer, one


def test_max_clients_per_host_defaults_to_the_limit_and_can_be_raised() -> None:
    assert parse_args([], {}).max_clients_per_host == limits.MAX_CLIENTS_PER_ADDRESS_HOST == 64
    assert parse_args(["--max-clients-per-host", "5000"], {}).max_clients_per_host == 5000


@pytest.mark.parametrize("bad", ["0", "many"])  # below 1; not a number
def test_max_clients_per_host_must_be_a_positive_number(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--max-clients-per-host", bad], {})
    assert exit_info.value.code == 2
    assert "--max-clients-per-host" in capsys.readouterr().err


def test_the_core_caps_sessions_per_address_at_the_configured_number() -> None:
    hub = Hub(HubConfig(max_clients_per_host=3))
    for n in range(3):
        envelope_peer(hub, 40001 + n, f"a{n}")
    fourth = Peer(hub, 40004)
    fourth.send(events.Hello(nick="a4"))
    fourth.send(events.Hello(nick="a4", cookie=one(events.Challenge, fourth.received()).cookie))
    [error] = fourth.received()
    assert error.code == "too-many-clients" and "--max-clients-per-host" in error.text
    assert TextPeer(hub, 40005).line("hi").startswith("error: 3 clients already come from 127.0.0.1")


def test_a_raised_cap_lets_more_than_64_sessions_share_an_address() -> None:
    hub = Hub(HubConfig(max_clients_per_host=100))
    for n in range(70):
        envelope_peer(hub, 41000 + n, f"n{n}")
    assert len(hub.core.registry.clients) == 70
