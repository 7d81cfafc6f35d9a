"""The monitor without sockets: Prometheus text rendering, request heads, pages, the --monitor address."""

from __future__ import annotations

import json
import re

import pytest

from roomcast.hub import monitor, prometheus
from roomcast.hub.core import HubConfig, HubCore
from roomcast.shared import addresses, limits

SAMPLE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*")*\})? \S+'
)


def render(counters: dict[str, int], gauges: dict[str, float] | None = None) -> str:
    return prometheus.render(counters, gauges or {}, {"version": "9.9", "hub_id": "ab"})


def samples(text: str) -> dict[str, str]:
    """``name{labels}`` -> value, after checking every line is a comment or a well-formed sample."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) roomcast_\w+ .+", line), line
            continue
        assert SAMPLE.fullmatch(line), line
        key, value = line.rsplit(" ", 1)
        found[key] = value
    return found


def test_counters_render_as_total_metrics_with_help_and_type() -> None:
    text = render({"datagrams_in": 3, "retransmits.fast": 4})
    assert "# HELP roomcast_datagrams_in_total UDP datagrams received.\n" in text
    assert "# TYPE roomcast_datagrams_in_total counter\nroomcast_datagrams_in_total 3\n" in text
    assert "# TYPE roomcast_retransmits_fast_total counter\nroomcast_retransmits_fast_total 4\n" in text


def test_core_counters_show_as_zero_before_their_first_increment() -> None:
    found = samples(render({}))
    assert found["roomcast_datagrams_in_total"] == "0"
    assert found["roomcast_deliveries_total"] == "0"


def test_errors_drops_departures_and_sessions_are_one_metric_each_with_a_label() -> None:
    text = render(
        {
            "errors.bad-name": 2,
            "errors.slow-down": 5,
            "drops.bad-token": 1,
            "departures.too-slow": 1,
            "sessions.text": 7,
        }
    )
    assert text.count("# TYPE roomcast_errors_total counter\n") == 1
    found = samples(text)
    assert found['roomcast_errors_total{code="bad-name"}'] == "2"
    assert found['roomcast_errors_total{code="slow-down"}'] == "5"
    assert found['roomcast_drops_total{reason="bad-token"}'] == "1"
    assert found['roomcast_departures_total{reason="too-slow"}'] == "1"
    assert found['roomcast_sessions_total{kind="text"}'] == "7"


def test_names_are_sanitized_and_label_values_escaped() -> None:
    found = samples(render({"odd-name.x": 1, 'errors.a"b\\c\nd': 2}))
    assert found["roomcast_odd_name_x_total"] == "1"
    assert found['roomcast_errors_total{code="a\\"b\\\\c\\nd"}'] == "2"


def test_names_equal_after_sanitizing_are_summed_not_duplicated() -> None:
    found = samples(render({"a.b": 1, "a-b": 2}))
    assert found["roomcast_a_b_total"] == "3"


def test_gauges_render_plain_with_special_floats_and_an_info_metric() -> None:
    text = render({}, {"clients_text": 2, "amplification": 1.5, "odd": float("inf"), "nan": float("nan")})
    assert "# TYPE roomcast_clients_text gauge\nroomcast_clients_text 2\n" in text
    found = samples(text)
    assert found["roomcast_amplification"] == "1.5"
    assert found["roomcast_odd"] == "+Inf"
    assert found["roomcast_nan"] == "NaN"
    assert found['roomcast_info{version="9.9",hub_id="ab"}'] == "1"
    assert text.endswith("\n")


# --- request heads --------------------------------------------------------------------------------


def test_request_head_gives_method_and_target() -> None:
    head = b"GET /connz?limit=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*"
    assert monitor.parse_head(head) == ("GET", "/connz?limit=2")
    assert monitor.parse_head(b"GET /varz HTTP/1.0") == ("GET", "/varz")


@pytest.mark.parametrize(
    "head",
    [
        b"garbage",
        b"GET /varz",
        b"GET varz HTTP/1.1\r\nHost: x",
        b"GET /varz HTTP/2.0\r\nHost: x",
        b"GET /varz HTTP/1.1",  # HTTP/1.1 without Host
        b"GET /varz HTTP/1.1\r\nHost: x\r\nno colon here",
        b"GET /varz HTTP/1.1\r\nHost: x\r\n folded: line",
    ],
)
def test_malformed_request_head_is_a_400(head: bytes) -> None:
    with pytest.raises(monitor.BadRequest) as caught:
        monitor.parse_head(head)
    assert caught.value.status == 400


# --- pages ------------------------------------------------------------------------------------------


def body(response: monitor.Response) -> object:
    return json.loads(response.body)


def test_healthz_is_ok_until_the_hub_drains() -> None:
    core = HubCore(HubConfig(), now=0.0)
    ok = monitor.respond(core, "GET", "/healthz", 1.0)
    assert (ok.status, body(ok)) == (200, {"status": "ok"})
    core.shutdown(1.5, limits.DRAIN_SECONDS)
    draining = monitor.respond(core, "GET", "/healthz", 2.0)
    assert (draining.status, body(draining)) == (503, {"status": "draining"})


def test_unknown_page_is_404_and_other_methods_405() -> None:
    core = HubCore(HubConfig(), now=0.0)
    assert monitor.respond(core, "GET", "/nope", 0.0).status == 404
    refused = monitor.respond(core, "POST", "/varz", 0.0)
    assert refused.status == 405
    assert b"\r\nAllow: GET, HEAD\r\n" in refused.encode()
    assert monitor.respond(core, "HEAD", "/varz", 0.0).encode(head_only=True).endswith(b"\r\n\r\n")


def test_connz_describes_clients_and_honours_its_limit() -> None:
    core = HubCore(HubConfig(), now=0.0)
    for n in range(3):
        client = core.new_client(("::1", 5000 + n), f"t{n}", now=1.0)
        assert client is not None
        core.registry.join(client, "Ops")
    page = body(monitor.respond(core, "GET", "/connz?limit=2", 4.0))
    assert isinstance(page, dict)
    assert (page["total"], page["limit"], len(page["clients"])) == (3, 2, 2)
    assert page["clients"][0] == {
        "nick": "t0",
        "address": "[::1]:5000",
        "kind": "text",
        "rooms": ["Ops"],
        "idle_seconds": 3.0,
        "rtt_ms": None,
        "unacked": None,
    }
    assert monitor.respond(core, "GET", "/connz?limit=-1", 4.0).status == 400


# --- the --monitor address ----------------------------------------------------------------------------


def test_monitor_address_parses_and_only_loopback_counts_as_loopback() -> None:
    assert addresses.parse_host_port("127.0.0.1:8222") == ("127.0.0.1", 8222)
    assert addresses.parse_host_port("[::1]:8222") == ("::1", 8222)
    for bad in ("127.0.0.1", "::1:8222", "127.0.0.1:99999", ":8222"):
        with pytest.raises(ValueError):
            addresses.parse_host_port(bad)
    assert addresses.is_loopback("127.0.0.1") and addresses.is_loopback("::1")
    assert not addresses.is_loopback("0.0.0.0")
    assert not addresses.is_loopback("::")
    assert not addresses.is_loopback("example.invalid")
