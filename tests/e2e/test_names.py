"""Names in any script, end to end: a real hub, textbook clients and netcat (each a process of
its own), and ``roomcast`` clients with CJK nicks and rooms; a look-alike nick is refused; the
monitor's JSON and the history kept on disk carry the names as written."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.test_monitor import fetch
from tests.tools import screen
from tests.tools.hubproc import LOOPBACK, HubProcess, free_tcp_port, running_hub
from tests.tools.liveproc import LiveProcess, live_process, netcat_client, roomcast_argv, roomcast_client

TIMEOUT = 10.0


@contextmanager
def textbook(hub: HubProcess) -> Iterator[tuple[LiveProcess, str]]:
    """``python -m tests.tools.textbook HOST PORT``: the textbook client as a process, and the
    guest nick the hub gave it (it says one line to learn it)."""
    host, port = hub.address
    argv = [sys.executable, "-m", "tests.tools.textbook", host, str(port), "--timeout", str(TIMEOUT)]
    with live_process(argv) as client:
        client.send("/rooms")
        nick = client.wait_for(r"^welcome (guest-\d+),", timeout=TIMEOUT).group(1)
        yield client, nick


def reply(client: LiveProcess, line: str, pattern: str) -> re.Match[str]:
    """Type ``line`` and wait for the reply (its lines printed after everything so far)."""
    start = len(client.out)
    client.send(line)
    return client.wait_for(pattern, timeout=TIMEOUT, start=start)


def test_textbook_clients_netcat_and_a_cjk_envelope_client_chat_in_a_cjk_room(hub: HubProcess) -> None:
    with textbook(hub) as (a, a_nick), textbook(hub) as (b, b_nick), netcat_client(*hub.address) as nc:
        reply(a, "/join 聊天", r"^joined 聊天 \(1 member\)$")
        reply(b, "/join 聊天", r"^joined 聊天 \(2 members\)$")
        nc.send("/live on")
        nc.wait_for("live mode on", timeout=TIMEOUT)
        nc.send("/join 聊天")
        nc.wait_for(r"^joined 聊天 \(3 members\)$", timeout=TIMEOUT)

        with roomcast_client(hub.hub_arg, "小明", "聊天") as ming:
            a.send("你好，小明")  # its reply: the room lines queued for it, or "sent to 聊天"
            ming.wait_for(screen.said("聊天", a_nick, "你好，小明"), timeout=TIMEOUT)
            nc.wait_for(re.escape(f"[聊天] {a_nick}: 你好，小明"), timeout=TIMEOUT)

            ming.send("大家好")
            ming.wait_for(screen.said("聊天", "小明", "大家好"), timeout=TIMEOUT)  # confirmed by the hub
            nc.wait_for(re.escape("[聊天] 小明: 大家好"), timeout=TIMEOUT)
            reply(b, "", re.escape(f"[聊天] {a_nick}: 你好，小明") + r"\n" + re.escape("[聊天] 小明: 大家好"))

            who = reply(b, "/who", r"^4 in 聊天: (.*)$").group(1).split()
            assert {a_nick, b_nick, "小明"} <= set(who) and len(who) == 4
            reply(b, "/msg 小明 悄悄话", r"^sent privately to 小明$")
            ming.wait_for(screen.private(b_nick, "悄悄话"), timeout=TIMEOUT)
            reply(a, "/rooms", r"^聊天 \(4\)$")


def test_a_look_alike_nick_is_refused_and_the_client_exits_1_naming_the_nick_it_looks_like(
    hub: HubProcess,
) -> None:
    with roomcast_client(hub.hub_arg, "alice", "lobby") as alice:
        with live_process(roomcast_argv(hub.hub_arg, "аlice", "lobby")) as impostor:  # Cyrillic а
            impostor.send("I am alice")
            impostor.close_stdin()
            assert impostor.wait(timeout=TIMEOUT) == 1
            impostor.wait_for(r"nick аlice looks like alice, who is here", "err", timeout=TIMEOUT)
        alice.send("still me")
        alice.wait_for(screen.said("lobby", "alice", "still me"), timeout=TIMEOUT)
        assert "I am alice" not in alice.out


def test_a_cjk_nick_and_room_work_from_the_command_line_and_look_alike_rooms_are_refused(
    hub: HubProcess,
) -> None:
    with roomcast_client(hub.hub_arg, "小明", "聊天", "#rust") as ming:
        ming.send("/join 1obby")  # lobby does not exist: a new room, fine
        ming.wait_for(r"-- joined 1obby", "err", timeout=TIMEOUT)
        ming.send("/join lobby")
        ming.wait_for(
            r"!! room name lobby looks like 1obby, which exists; /join 1obby", "err", timeout=TIMEOUT
        )
        ming.send("/nick 小明明")
        ming.wait_for(r"-- you are now 小明明", "err", timeout=TIMEOUT)


def test_cjk_names_reach_the_monitor_json_and_the_history_kept_on_disk(tmp_path: Path) -> None:
    monitor, data = free_tcp_port(), tmp_path / "data"
    with running_hub(tmp_path, "--monitor", f"{LOOPBACK}:{monitor}", "--data-dir", str(data)) as hub:
        with roomcast_client(hub.hub_arg, "小明", "聊天") as ming:
            ming.send("你好，历史")
            ming.wait_for(screen.said("聊天", "小明", "你好，历史"), timeout=TIMEOUT)
            status, headers, body = fetch(monitor, "/connz")
            assert status == 200 and "charset=utf-8" in headers["Content-Type"]
            assert '"nick": "小明"'.encode() in body, "names are written as they are, in UTF-8"
            [client] = json.loads(body)["clients"]
            assert client["nick"] == "小明" and client["rooms"] == ["聊天"]
        port = hub.port
    with (
        running_hub(tmp_path, "--data-dir", str(data), port=port) as again,
        live_process(roomcast_argv(again.hub_arg, "李雷", "聊天", extra=("--history", "5"))) as li,
    ):
        li.wait_for(r"^\d\d:\d\d \(history\) \[聊天\] <小明> 你好，历史$", timeout=TIMEOUT)
