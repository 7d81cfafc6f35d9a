"""The ``roomcast-hub`` process: command line, exit codes, port choice, signals, Procfile."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from roomcast.hub.cli import default_port, parse_args
from roomcast.shared import __version__
from tests.tools import processes, screen
from tests.tools.hubproc import LOOPBACK, HubProcess, free_udp_port, wait_until_answering
from tests.tools.liveproc import BIN, LiveProcess, live_process, netcat_client, roomcast_client
from tests.tools.textbook import TextbookClient

HUB = str(BIN / "roomcast-hub")


def run_hub(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return processes.run([HUB, *args], env=env, text=True, timeout=10)


@contextmanager
def hub_answering_on(port: int, *args: str, env: Mapping[str, str] | None = None) -> Iterator[LiveProcess]:
    """A hub started with ``args`` and ``env`` (no --port unless given), once it answers on ``port``."""
    with live_process([HUB, "--host", LOOPBACK, *args], env=env) as process:
        wait_until_answering(LOOPBACK, port, timeout=30.0)
        yield process


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


# --- command line -------------------------------------------------------------------------------


def test_help_and_version_exit_0() -> None:
    helped = run_hub("--help")
    assert helped.returncode == 0
    for option in ("--host", "--port", "--log-level", "ROOMCAST_PORT", "9999"):
        assert option in helped.stdout
    versioned = run_hub("--version")
    assert versioned.returncode == 0
    assert versioned.stdout == f"roomcast-hub {__version__}\n"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--bogus"], {}),
        (["--port", "not-a-port"], {}),
        (["--port", "70000"], {}),
        (["--log-level", "LOUD"], {}),
        (["unexpected"], {}),
        ([], {"ROOMCAST_PORT": "ninety"}),
        ([], {"ROOMCAST_LOG_LEVEL": "loud"}),
    ],
)
def test_bad_usage_exits_2_with_usage(args: list[str], env: dict[str, str]) -> None:
    result = run_hub(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: roomcast-hub")
    assert "Traceback" not in result.stderr


def test_port_in_use_exits_1_with_a_one_line_hint() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        port = squatter.getsockname()[1]
        result = run_hub("--host", LOOPBACK, "--port", str(port))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0]
    assert re.search(r"in use|another hub", lines[0]), lines[0]


def test_default_port_is_the_textbook_9999() -> None:
    assert default_port({}) == 9999
    assert parse_args([], {}).port == 9999
    assert parse_args([], {"PORT": "5000"}).port == 5000
    assert parse_args([], {"ROOMCAST_PORT": "7000", "PORT": "5000"}).port == 7000
    assert parse_args(["--port", "8000"], {"ROOMCAST_PORT": "7000", "PORT": "5000"}).port == 8000


@pytest.mark.parametrize(
    ("names", "winner"),
    [
        (("ROOMCAST_PORT",), "ROOMCAST_PORT"),
        (("PORT",), "PORT"),
        (("ROOMCAST_PORT", "PORT"), "ROOMCAST_PORT"),
    ],
)
def test_port_from_the_environment(names: tuple[str, ...], winner: str) -> None:
    ports = {name: free_udp_port() for name in names}
    with hub_answering_on(ports[winner], env={k: str(v) for k, v in ports.items()}) as hub:
        hub.wait_for(rf"listening on 127\.0\.0\.1 port {ports[winner]} ", "err")
        for name, port in ports.items():
            if name != winner:
                assert port_is_free(port), f"{name} must lose to {winner}"
        hub.signal(signal.SIGTERM)
        assert hub.wait() == 0


def test_port_flag_beats_the_environment() -> None:
    flag, roomcast_port, port = free_udp_port(), free_udp_port(), free_udp_port()
    env = {"ROOMCAST_PORT": str(roomcast_port), "PORT": str(port)}
    with hub_answering_on(flag, "--port", str(flag), env=env) as hub:
        hub.wait_for(rf"listening on 127\.0\.0\.1 port {flag} ", "err")
        assert port_is_free(roomcast_port) and port_is_free(port)
        hub.signal(signal.SIGTERM)
        assert hub.wait() == 0


def test_log_level_is_accepted_and_applied() -> None:
    port = free_udp_port()
    with hub_answering_on(port, "--port", str(port), "--log-level", "warning") as hub:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            junk.sendto(b"\xc1\x01\xff\xff", (LOOPBACK, port))
        hub.wait_for(r"WARNING roomcast\.hub: bad input from", "err")
        hub.signal(signal.SIGTERM)
        assert hub.wait() == 0
    assert " INFO " not in hub.err, "--log-level warning hides info lines"

    port = free_udp_port()
    with hub_answering_on(port, "--port", str(port), env={"ROOMCAST_LOG_LEVEL": "debug"}) as hub:
        hub.wait_for(r"INFO roomcast\.hub: hub listening", "err")
        hub.signal(signal.SIGTERM)
        assert hub.wait() == 0


# --- signals ------------------------------------------------------------------------------------


def test_sigterm_tells_members_and_exits_0(hub: HubProcess) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice, netcat_client(*hub.address) as nc:
        nc.send("/live on")
        nc.wait_for("live mode on")
        assert hub.stop(signal.SIGTERM, timeout=15.0) == 0
        alice.wait_for(screen.notice("the hub said: the hub is restarting; reconnecting.*"), "err")
        nc.wait_for(re.escape("hub: the hub is restarting"))
    log = hub.log()
    assert "SIGTERM: draining" in log
    assert "hub stopped:" in log
    assert "Traceback" not in log


def test_sigint_exits_0(hub: HubProcess) -> None:
    with TextbookClient(*hub.address) as guest:
        assert guest.say("hello").endswith("sent to lobby")
    assert hub.stop(signal.SIGINT, timeout=15.0) == 0
    assert "SIGINT: draining" in hub.log()
    assert "Traceback" not in hub.log()


# --- Procfile -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_procfile_runs_the_hub_under_honcho(signum: int) -> None:
    port = free_udp_port()
    with live_process([str(BIN / "honcho"), "start"], env={"ROOMCAST_PORT": str(port)}) as honcho:
        # honcho starts the hub in a session of its own: if honcho dies, the hub is still ended.
        started = honcho.wait_for(r"system +\| hub\.1 started \(pid=(\d+)\)", timeout=30.0)
        processes.adopt(int(started.group(1)), honcho.proc)
        wait_until_answering(LOOPBACK, port, timeout=30.0)
        with TextbookClient(LOOPBACK, port) as guest:
            assert guest.say("hello honcho").endswith("sent to lobby")
        honcho.wait_for(rf"hub\.1 +\| .*listening on 127\.0\.0\.1 port {port} ")  # not honcho's $PORT
        honcho.signal(signum)
        honcho.wait(timeout=10.0)
    assert re.search(r"hub\.1 stopped \(rc=0\)", honcho.out), honcho.out
    assert port_is_free(port)
