"""``roomcast --hub`` and ``ROOMCAST_HUB`` take one hub or a list of them."""

from __future__ import annotations

import pytest

from roomcast.client.options import parse_args


def test_roomcast_hub_takes_a_list_in_order() -> None:
    options = parse_args([], {"ROOMCAST_HUB": "127.0.0.1:9999, 127.0.0.1:10000"})
    assert options.hubs == ("127.0.0.1:9999", "127.0.0.1:10000")
    assert options.hub_addresses == (("127.0.0.1", 9999), ("127.0.0.1", 10000))


def test_the_hub_option_wins_over_the_environment_and_one_hub_stays_one() -> None:
    options = parse_args(["--hub", "[::1]:10001"], {"ROOMCAST_HUB": "127.0.0.1:9999,127.0.0.1:10000"})
    assert options.hubs == ("[::1]:10001",)
    assert options.hub_addresses[0][:2] == ("::1", 10001)


@pytest.mark.parametrize(
    ("hub", "said"),
    [
        ("127.0.0.1:9999,,127.0.0.1:10000", "empty entry"),
        ("127.0.0.1:9999,nonsense", "is not HOST:PORT"),
        (",".join(["127.0.0.1:9999"] * 17), "the limit is 16"),
    ],
)
def test_a_bad_hub_list_says_what_is_wrong(hub: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--hub", hub], {})
    assert exited.value.code == 2
    assert said in capsys.readouterr().err
