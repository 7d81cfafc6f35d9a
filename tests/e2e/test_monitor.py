"""The monitoring endpoint of a real ``roomcast-hub`` process, read over HTTP on loopback."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import BIN, LOOPBACK, HubProcess, free_tcp_port, running_hub
from tests.tools.processes import run

#: No proxy, even if the environment names one: these requests are for loopback only.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SAMPLE = re.compile(
    r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*")*\})? \S+'
)


def fetch(port: int, path: str, method: str = "GET") -> tuple[int, Message, bytes]:
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", method=method)
    try:
        with OPENER.open(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as refusal:
        with refusal:
            return refusal.code, refusal.headers, refusal.read()


def fetch_json(port: int, path: str) -> Any:
    status, headers, body = fetch(port, path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return json.loads(body)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` as is and read the whole answer (the server closes after one response)."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@attrs.frozen
class Monitored:
    hub: HubProcess
    port: int
    alice: PipedClient


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    """A hub with --monitor, alice staying in ops, and one message from bob (who then leaves)."""
    tmp = tmp_path_factory.mktemp("monitor")
    port = free_tcp_port()
    with running_hub(tmp, "--monitor", f"{LOOPBACK}:{port}") as hub:
        alice = PipedClient(hub.port, "alice", tmp, room="ops")
        try:
            wait_until(lambda: "joined ops" in alice.err.read_text(), "alice to join ops", timeout=30)
            bob = run(
                [str(BIN / "roomcast"), "--hub", hub.hub_arg, "--nick", "bob", "--room", "ops"],
                input="hi from bob\n", text=True, timeout=30,
            )  # fmt: skip
            assert bob.returncode == 0, bob.stderr
            alice.wait_for(lambda: "hi from bob" in alice.bodies(), "alice to get bob's line")
            yield Monitored(hub, port, alice)
        finally:
            alice.kill()


def test_hub_logs_the_monitor_url(monitored: Monitored) -> None:
    assert f"monitor on http://{LOOPBACK}:{monitored.port}/" in monitored.hub.log()


def test_healthz_says_ok(monitored: Monitored) -> None:
    assert fetch_json(monitored.port, "/healthz") == {"status": "ok"}


def test_varz_has_the_stats_counters_and_gauges(monitored: Monitored) -> None:
    varz = fetch_json(monitored.port, "/varz")
    assert varz["counters"]["messages"] >= 1
    assert varz["counters"]["datagrams_in"] >= 1
    assert varz["counters"]["sessions.envelope"] >= 2
    assert varz["gauges"]["clients_envelope"] >= 1
    assert varz["gauges"]["clients_text"] == 0
    assert varz["gauges"]["rooms"] >= 1
    assert re.fullmatch(r"[0-9a-f]{16}", varz["hub_id"])
    assert varz["uptime_seconds"] > 0
    assert varz["version"] and varz["start_time"].endswith("+00:00")


def test_connz_lists_the_connected_client_with_its_rooms_and_rtt(monitored: Monitored) -> None:
    def alice() -> dict[str, Any]:
        clients = fetch_json(monitored.port, "/connz")["clients"]
        return next(c for c in clients if c["nick"] == "alice")

    wait_until(lambda: alice()["rtt_ms"] is not None, "an RTT sample from alice's acks")
    entry = alice()
    assert entry["kind"] == "envelope"
    assert entry["rooms"] == ["ops"]
    assert entry["address"].startswith(f"{LOOPBACK}:")
    assert entry["rtt_ms"] >= 0 and entry["idle_seconds"] >= 0
    assert isinstance(entry["unacked"], int)


def test_connz_limit_caps_the_list_but_not_the_total(monitored: Monitored) -> None:
    connz = fetch_json(monitored.port, "/connz?limit=0")
    assert connz["clients"] == [] and connz["limit"] == 0 and connz["total"] >= 1
    status, _, _ = fetch(monitored.port, "/connz?limit=many")
    assert status == 400


def test_metrics_is_prometheus_text(monitored: Monitored) -> None:
    status, headers, body = fetch(monitored.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    values: dict[str, float] = {}
    typed: set[str] = set()
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif not line.startswith("# HELP "):
            assert SAMPLE.fullmatch(line), line
            name, value = line.rsplit(" ", 1)
            assert name.split("{")[0] in typed, f"{line} comes before its TYPE line"
            values[name] = float(value)
    assert values["roomcast_datagrams_in_total"] >= 1
    assert values["roomcast_messages_total"] >= 1
    assert values['roomcast_sessions_total{kind="envelope"}'] >= 2
    assert values["roomcast_clients_envelope"] >= 1


def test_unknown_path_is_404_and_post_is_405(monitored: Monitored) -> None:
    assert fetch(monitored.port, "/nope")[0] == 404
    status, headers, _ = fetch(monitored.port, "/varz", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_malformed_and_oversized_requests_are_refused(monitored: Monitored) -> None:
    assert raw_exchange(monitored.port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    oversized = b"GET /varz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw_exchange(monitored.port, oversized).startswith(b"HTTP/1.1 431 ")


def test_a_silent_connection_does_not_hold_up_other_requests(monitored: Monitored) -> None:
    with socket.create_connection((LOOPBACK, monitored.port), timeout=5) as silent:
        assert fetch_json(monitored.port, "/healthz") == {"status": "ok"}
        # Answered while the silent one is still open: not after the server gave up on it.
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.recv(1)


def test_monitor_port_closes_after_sigterm_and_the_hub_exits_0(tmp_path: Path) -> None:
    port = free_tcp_port()
    with running_hub(tmp_path, "--monitor", f"{LOOPBACK}:{port}") as hub:
        assert fetch_json(port, "/healthz") == {"status": "ok"}
        assert hub.stop() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=2).close()


@pytest.mark.parametrize(
    ("args", "env"), [(["--monitor", "0.0.0.0:8222"], {}), ([], {"ROOMCAST_MONITOR": "0.0.0.0:8222"})]
)
def test_a_non_loopback_monitor_is_refused_with_exit_2(args: list[str], env: dict[str, str]) -> None:
    result = run(
        [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", "0", *args], env=env, text=True, timeout=10
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: roomcast-hub")
    assert "0.0.0.0 is not a loopback address" in result.stderr
    assert "--monitor-any-host" in result.stderr
    assert "listening" not in result.stderr


def test_a_busy_monitor_port_exits_1_with_a_hint(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run(
            [str(BIN / "roomcast-hub"), "--host", LOOPBACK, "--port", "0", "--monitor", f"{LOOPBACK}:{port}"],
            text=True,
            timeout=10,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot serve the monitor on {LOOPBACK} port {port}" in result.stderr
    assert "Traceback" not in result.stderr
