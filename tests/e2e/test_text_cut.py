"""A room line longer than a text reply reaches the textbook client and netcat cut in its
middle: its ``[room] nick:`` and its last words stay, the reply is valid UTF-8 within 1024
bytes, one datagram per line sent."""

from __future__ import annotations

import re
import sys

from roomcast.shared import limits
from roomcast.shared.text import ELLIPSIS
from tests.tools import screen
from tests.tools.hubproc import HubProcess
from tests.tools.liveproc import live_process, netcat_client, roomcast_client

ROOM = "房" * limits.MAX_ROOM  # 96 bytes
NICK = "名" * (limits.MAX_NICK_BYTES // 3)  # 63 bytes
BODY = "话" * ((limits.MAX_BODY - 4) // 3) + " END"  # just under MAX_BODY bytes
TIMEOUT = 20.0


def test_a_room_line_over_1024_bytes_reaches_text_clients_cut_in_its_middle(hub: HubProcess) -> None:
    assert len(f"[{ROOM}] {NICK}: {BODY}".encode()) > limits.MAX_TEXT_REPLY
    argv = [sys.executable, "-m", "tests.tools.textbook", hub.host, str(hub.port), "--timeout", "10"]
    with live_process(argv) as guest, netcat_client(*hub.address) as nc:
        guest.send(f"/join {ROOM}")
        guest.wait_for(rf"^joined {ROOM} \(1 member\)$", timeout=TIMEOUT)
        nc.send("/live on")
        nc.wait_for("live mode on", timeout=TIMEOUT)
        nc.send(f"/join {ROOM}")
        nc.wait_for(rf"^joined {ROOM} \(2 members\)$", timeout=TIMEOUT)
        with roomcast_client(hub.hub_arg, NICK, ROOM) as sender:
            sender.send(BODY)
            sender.wait_for(screen.said(ROOM, NICK, BODY), timeout=TIMEOUT)  # confirmed by the hub
            start = len(guest.out)
            guest.send("")  # an empty line collects what arrived
            cut = rf"^\[{ROOM}\] {NICK}: 话+{ELLIPSIS}话+ END$"
            guest.wait_for(cut, timeout=TIMEOUT, start=start)
            nc.wait_for(cut, timeout=TIMEOUT)
        guest.send("bye")
        assert guest.wait(timeout=TIMEOUT) == 0, guest.err  # strict UTF-8
        assert guest.out.endswith("\nbye\n"), "one datagram per line: bye answered bye"
    shown = re.search(cut, guest.out, re.MULTILINE)
    assert shown is not None and len(shown.group(0).encode()) <= limits.MAX_TEXT_REPLY
