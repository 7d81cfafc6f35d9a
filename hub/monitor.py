"""The hub's monitoring endpoint: ``/healthz``, ``/varz``, ``/connz`` and ``/metrics`` over HTTP/1.1.

Operators and Prometheus need to ask "is the hub up, how busy is it, who is on it" without a chat
client.  The server is trio's own TCP server running in the hub's nursery, so it stops with the
hub (no thread can outlive shutdown), and it costs the datagram path nothing: it reads the core's
state only when asked, between two turns of the hub loop.  One request per connection, bounded in
size and time, so a slow or hostile client cannot hold it.  The pages are pure functions of the
core and the time (testable without sockets); ``hub.prometheus`` renders ``/metrics``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio

from roomcast.hub import prometheus
from roomcast.hub.core import HubCore
from roomcast.hub.rooms import Address, Client, Room
from roomcast.hub.stats import rss_kib
from roomcast.shared import __version__, limits

log = logging.getLogger("roomcast.hub")

MAX_REQUEST_BYTES = limits.MONITOR_MAX_REQUEST
READ_TIMEOUT = limits.MONITOR_READ_TIMEOUT
WRITE_TIMEOUT = limits.MONITOR_WRITE_TIMEOUT
MAX_CONNECTIONS = limits.MONITOR_MAX_CONNECTIONS
DEFAULT_CONNZ_LIMIT = limits.MONITOR_CONNZ_LIMIT

JSON_TYPE = "application/json; charset=utf-8"
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # RFC 9110 §5.6.2
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") (/[!-~]*) HTTP/1\.([01])")
HEADER_LINE = re.compile(rb"(" + TOKEN + rb"):[\t -~\x80-\xff]*")
HEAD_END = re.compile(rb"\r?\n\r?\n")


class BadRequest(Exception):
    """The client sent something this server will not answer normally: ``status`` says why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class MonitorUnavailable(Exception):
    """The monitor could not listen where the operator asked (the hub exits 1 with this text)."""


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE

    def encode(self, head_only: bool = False) -> bytes:
        head = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        if self.status == HTTPStatus.METHOD_NOT_ALLOWED:
            head.append("Allow: GET, HEAD")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if head_only else self.body)


def json_response(value: object, status: int = 200) -> Response:
    return Response(
        status, json.dumps(value, indent=1, ensure_ascii=False).encode() + b"\n"
    )  # names as written


def error(status: int, text: str) -> Response:
    return json_response({"error": text}, status)


# --- the operator's address -----------------------------------------------------------------------


def url_of(address: Address) -> str:
    host, port = str(address[0]), address[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


# --- requests and pages (no I/O) --------------------------------------------------------------------


def parse_head(head: bytes) -> tuple[str, str]:
    """The method and target of a request head (without its blank line), or BadRequest."""
    request_line, *headers = [line.removesuffix(b"\r") for line in head.split(b"\n")]
    match = REQUEST_LINE.fullmatch(request_line)
    if match is None:
        raise BadRequest(400, "expected a request line like 'GET /varz HTTP/1.1'")
    if not all(HEADER_LINE.fullmatch(line) for line in headers):
        raise BadRequest(400, "malformed header line")
    hosts = sum(1 for line in headers if line.split(b":", 1)[0].lower() == b"host")
    if match[3] == b"1" and hosts != 1:
        raise BadRequest(400, "an HTTP/1.1 request needs exactly one Host header")  # RFC 9112 §3.2
    return match[1].decode(), match[2].decode()


def respond(core: HubCore, method: str, target: str, now: float) -> Response:
    url = urlsplit(target)
    page = PAGES.get(url.path)
    if page is None:
        return error(404, f"no page {url.path}; try /healthz /varz /connz /metrics")
    if method not in ("GET", "HEAD"):
        return error(405, f"{method} is not allowed here; use GET")
    return page(core, parse_qs(url.query), now)


def healthz(core: HubCore, query: dict[str, list[str]], now: float) -> Response:
    """200 while the hub accepts clients; 503 once it drains, or while its cluster's NATS is
    unreachable (cluster mode), so a balancer moves on."""
    if not core.accepting:
        return json_response({"status": "draining"}, 503)
    if not core.engine.available:
        return json_response({"status": "nats-unavailable", "reason": core.engine.reason}, 503)
    return json_response({"status": "ok"})


def varz(core: HubCore, query: dict[str, list[str]], now: float) -> Response:
    started = core.wall(core.started)
    return json_response({
        "version": __version__,
        "hub_id": core.hub_id.hex(),
        "start_time": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "start_time_unix": round(started, 3),
        "uptime_seconds": round(now - core.started, 3),
        "accepting": core.accepting,
        "gauges": {**core.gauges(), "rss_kib": rss_kib()},
        "counters": dict(sorted(core.counters.values.items())),
        **({"cluster": cluster} if (cluster := core.engine.report(core, now)) is not None else {}),
    })  # fmt: skip


def connz(core: HubCore, query: dict[str, list[str]], now: float) -> Response:
    raw = query.get("limit", [str(DEFAULT_CONNZ_LIMIT)])[-1]
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        return error(400, f"limit must be a whole number of clients, not {raw!r}")
    limit, clients = int(raw), core.registry.clients
    shown = [describe(c, core.registry.rooms, now) for c in itertools.islice(clients.values(), limit)]
    return json_response({"total": len(clients), "limit": limit, "clients": shown})


def describe(client: Client, rooms: Mapping[str, Room], now: float) -> dict[str, Any]:
    """One /connz entry; RTT and unacked only mean something for envelope clients."""
    window = client.link.window if client.link is not None else None
    rtt = window.rtt if window is not None and window.rtt.samples else None
    return {
        "nick": client.nick,
        "address": url_of(client.address).removeprefix("http://").removesuffix("/"),
        "kind": client.kind,
        "rooms": [rooms[key].name if key in rooms else key for key in client.rooms],
        "idle_seconds": round(max(0.0, now - client.last_seen), 3),
        "rtt_ms": round(rtt.srtt * 1000, 3) if rtt is not None else None,
        "unacked": len(window) if window is not None else None,
    }


def metrics(core: HubCore, query: dict[str, list[str]], now: float) -> Response:
    gauges = {
        **core.gauges(),
        "rss_kib": rss_kib(),
        "uptime_seconds": round(now - core.started, 3),
        "start_time_seconds": round(core.wall(core.started), 3),
    }
    info = {"version": __version__, "hub_id": core.hub_id.hex()}
    body = prometheus.render(core.counters.values, gauges, info)
    return Response(200, body.encode(), prometheus.CONTENT_TYPE)


PAGES: dict[str, Callable[[HubCore, dict[str, list[str]], float], Response]] = {
    "/healthz": healthz, "/varz": varz, "/connz": connz, "/metrics": metrics,
}  # fmt: skip


# --- the trio shell -------------------------------------------------------------------------------------


async def read_head(stream: trio.abc.ReceiveStream) -> bytes | None:
    """The request head, bounded by MAX_REQUEST_BYTES and READ_TIMEOUT; None if the client said nothing."""
    buffer = bytearray()
    with trio.move_on_after(READ_TIMEOUT):
        while True:
            end = HEAD_END.search(buffer)
            if end is not None and end.start() <= MAX_REQUEST_BYTES:
                return bytes(buffer[: end.start()])
            if len(buffer) > MAX_REQUEST_BYTES:
                raise BadRequest(431, f"the request head is over {MAX_REQUEST_BYTES} bytes")
            chunk = await stream.receive_some(MAX_REQUEST_BYTES)
            if not chunk:
                if buffer:
                    raise BadRequest(400, "the connection ended inside the request head")
                return None
            buffer += chunk
    raise BadRequest(408, f"the request took over {READ_TIMEOUT:g} s to arrive")


class MonitorServer:
    """Answers one request per connection from the core's current state, then closes."""

    def __init__(self, core: HubCore) -> None:
        self.core = core
        self.connections = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        try:
            async with stream:
                response, head_only = await self._answer(stream)
                if response is not None:
                    with trio.move_on_after(WRITE_TIMEOUT):
                        await stream.send_all(response.encode(head_only))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away: nobody to tell
        finally:
            self.connections -= 1

    async def _answer(self, stream: trio.SocketStream) -> tuple[Response | None, bool]:
        if self.connections > MAX_CONNECTIONS:
            return error(503, f"over {MAX_CONNECTIONS} monitor connections are open; retry shortly"), False
        try:
            head = await read_head(stream)
            if head is None:
                return None, False
            method, target = parse_head(head)
        except BadRequest as exc:
            return error(exc.status, exc.text), False
        try:
            return respond(self.core, method, target, trio.current_time()), method == "HEAD"
        except Exception:  # a bug here must not take the hub down with it
            log.exception("monitor: failed to answer %s %s", method, target)
            return error(500, "the monitor failed; see the hub log"), False


async def serve_monitor(
    core: HubCore, host: str, port: int, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """Listen on ``host``:``port`` and answer until cancelled; a bind failure raises
    MonitorUnavailable before ``task_status.started``, so ``nursery.start`` reports it."""
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise MonitorUnavailable(
            f"cannot serve the monitor on {host} port {port}: {exc.strerror or exc}; pick another --monitor"
        ) from exc
    urls = " ".join(url_of(listener.socket.getsockname()) for listener in listeners)
    log.info("monitor on %s (GET healthz varz connz metrics)", urls)
    await trio.serve_listeners(MonitorServer(core).handle, listeners, task_status=task_status)
