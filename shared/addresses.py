"""``HOST:PORT`` as users write it (``127.0.0.1:9999``, ``[::1]:9999``), and what counts as
loopback.  The client's ``--hub`` and the hub's ``--monitor`` both parse it here."""

from __future__ import annotations

import ipaddress
import re

_HOST_PORT = re.compile(r"\[([^\[\]]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})")


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); ValueError says what is wrong."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9999 or [::1]:9999)")
    host, port = match[1] or match[3], int(match[2] or match[4])
    if port > 65535:
        raise ValueError(f"port {port} is not between 0 and 65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere
