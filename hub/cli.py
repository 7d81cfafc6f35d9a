"""``roomcast-hub``: command line, logging and exit codes of the hub process.

Exit codes: 0 after a clean shutdown on SIGINT/SIGTERM, 1 on a runtime error (with a one-line
hint, e.g. the port is in use, or the --data-dir cannot be used), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import sys
from pathlib import Path

import trio

from roomcast.hub.cluster.options import ClusterError, ClusterOptions
from roomcast.hub.cluster.wire import check_cluster_name
from roomcast.hub.core import LOOPBACK, HubConfig
from roomcast.hub.monitor import MonitorUnavailable
from roomcast.hub.server import HubServer, ServerOptions
from roomcast.hub.store import HistoryStore, StoreError
from roomcast.hub.udpsocket import open_socket
from roomcast.shared import __version__, limits
from roomcast.shared.addresses import is_loopback, parse_host_port

log = logging.getLogger("roomcast.hub")


def default_port(environ: dict[str, str]) -> int:
    """``ROOMCAST_PORT``, else ``PORT`` (as honcho sets it), else the textbook 9999."""
    for name in ("ROOMCAST_PORT", "PORT"):
        if environ.get(name):
            return int(environ[name])
    return limits.DEFAULT_PORT


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_args(argv: list[str] | None, environ: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="roomcast-hub",
        description="Roomcast hub: room chat over UDP for envelope clients, netcat and textbook UDP clients.",
    )
    parser.add_argument("--host", default=environ.get("ROOMCAST_HOST", limits.DEFAULT_HOST),
                        help="address to bind (default %(default)s; env ROOMCAST_HOST)")  # fmt: skip
    parser.add_argument("--port", type=int, default=None,
                        help="UDP port (default: ROOMCAST_PORT, else PORT, else 9999)")  # fmt: skip
    parser.add_argument("--log-level", default=None, choices=LOG_LEVELS, type=str.upper,
                        help="log level (default INFO; env ROOMCAST_LOG_LEVEL)")  # fmt: skip
    parser.add_argument("--trust", action="append", default=None, metavar="CIDR",
                        help="network whose text clients need no code (repeatable; default loopback)")  # fmt: skip
    parser.add_argument("--flood-rate", type=float, default=limits.FLOOD_RATE,
                        help="messages per second per session after a burst; 0 turns flood control off "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--idle-timeout", type=float, default=limits.SESSION_TIMEOUT,
                        help="evict an envelope client silent this long (default %(default)s s)")  # fmt: skip
    parser.add_argument("--text-idle-timeout", type=float, default=limits.TEXT_SESSION_TIMEOUT,
                        help="evict a plain-text client silent this long (default %(default)s s)")  # fmt: skip
    parser.add_argument("--max-clients-per-host", type=int, default=limits.MAX_CLIENTS_PER_ADDRESS_HOST,
                        metavar="N", help="sessions one IP address may hold (default %(default)s); raise it "
                        "for clients behind NAT")  # fmt: skip
    parser.add_argument("--drain-seconds", type=float, default=limits.DRAIN_SECONDS,
                        help="on SIGTERM, keep delivering for up to this long (default %(default)s)")  # fmt: skip
    parser.add_argument("--stats-interval", type=float, default=limits.STATS_INTERVAL,
                        help="seconds between stats lines in the log (default %(default)s)")  # fmt: skip
    parser.add_argument("--monitor", default=environ.get("ROOMCAST_MONITOR") or None, metavar="HOST:PORT",
                        help="serve GET /healthz /varz /connz /metrics over HTTP here (default off; "
                        "env ROOMCAST_MONITOR; loopback only unless --monitor-any-host)")  # fmt: skip
    parser.add_argument("--monitor-any-host", action="store_true",
                        help="allow --monitor on a non-loopback address (the monitor has no authentication)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=environ.get("ROOMCAST_DATA_DIR") or None, metavar="DIR",
                        help="keep room history and topics in DIR (created if missing) so a restarted hub "
                        "still has them (default: in memory only; env ROOMCAST_DATA_DIR)")  # fmt: skip
    _cluster_arguments(parser, environ)
    parser.add_argument("--version", action="version", version=f"roomcast-hub {__version__}")
    args = parser.parse_args(argv)
    if args.log_level is None:
        args.log_level = environ.get("ROOMCAST_LOG_LEVEL", "INFO").upper() or "INFO"
        if args.log_level not in LOG_LEVELS:
            parser.error(
                f"ROOMCAST_LOG_LEVEL={environ['ROOMCAST_LOG_LEVEL']!r} is not a log level; "
                f"use one of {', '.join(LOG_LEVELS)}"
            )
    args.cluster = _cluster_options(parser, args)
    try:
        args.port = args.port if args.port is not None else default_port(environ)
        args.trusted = (
            tuple(ipaddress.ip_network(c, strict=False) for c in args.trust) if args.trust else LOOPBACK
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        args.monitor = parse_host_port(args.monitor) if args.monitor else None
    except ValueError as exc:
        parser.error(f"--monitor {exc}")
    if args.max_clients_per_host < 1:
        parser.error(f"--max-clients-per-host must be at least 1, not {args.max_clients_per_host}")
    if not 0 <= args.port <= 65535:
        parser.error(f"port {args.port} is not between 0 and 65535")
    if args.monitor and not args.monitor_any_host and not is_loopback(args.monitor[0]):
        parser.error(
            f"--monitor host {args.monitor[0]} is not a loopback address; the monitor has no authentication, "
            "so use 127.0.0.1 or ::1, or add --monitor-any-host if you mean it"
        )
    return args


def _cluster_arguments(parser: argparse.ArgumentParser, environ: dict[str, str]) -> None:
    group = parser.add_argument_group("cluster mode (rooms shared by many hubs through NATS JetStream)")
    group.add_argument("--nats", default=environ.get("ROOMCAST_NATS") or None, metavar="URL[,URL...]",
                       help="NATS servers of the cluster, e.g. nats://127.0.0.1:4222; turns cluster mode on "
                       "(default off; env ROOMCAST_NATS)")  # fmt: skip
    group.add_argument("--nats-replicas", type=int, default=None, metavar="N",
                       help="replicas of the streams this cluster creates (default 3 when the NATS system "
                       "has at least 3 servers, else 1)")  # fmt: skip
    group.add_argument("--cluster", default="roomcast", metavar="NAME",
                       help="prefix of every stream and subject, so clusters can share NATS (default %(default)s)")  # fmt: skip
    group.add_argument("--stream-shards", type=int, default=1, metavar="N",
                       help="room streams, each with its own leader; fixed for the cluster's life (default 1)")  # fmt: skip


def _cluster_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ClusterOptions | None:
    if not args.nats:
        for flag, value, default in (("--nats-replicas", args.nats_replicas, None),
                                     ("--stream-shards", args.stream_shards, 1)):  # fmt: skip
            if value != default:
                parser.error(f"{flag} needs --nats (cluster mode)")
        return None
    if args.data_dir is not None:
        parser.error("--data-dir is the standalone store; in cluster mode (--nats) JetStream keeps history")
    servers = tuple(
        u if "://" in u else f"nats://{u}" for u in (u.strip() for u in args.nats.split(",")) if u
    )
    if not servers:
        parser.error("--nats needs at least one URL, e.g. nats://127.0.0.1:4222")
    if args.nats_replicas is not None and not 1 <= args.nats_replicas <= 5:
        parser.error(f"--nats-replicas {args.nats_replicas} is not between 1 and 5 (JetStream's limit)")
    if not 1 <= args.stream_shards <= 64:
        parser.error(f"--stream-shards {args.stream_shards} is not between 1 and 64")
    try:
        check_cluster_name(args.cluster)
    except ValueError as exc:
        parser.error(f"--cluster: {exc}")
    return ClusterOptions(
        servers, cluster=args.cluster, replicas=args.nats_replicas, shards=args.stream_shards
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, dict(os.environ))
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = ServerOptions(
        host=args.host,
        port=args.port,
        drain_seconds=args.drain_seconds,
        stats_interval=args.stats_interval,
        core=HubConfig(
            trusted=args.trusted,
            flood_rate=args.flood_rate,
            session_timeout=args.idle_timeout,
            text_session_timeout=args.text_idle_timeout,
            max_clients_per_host=args.max_clients_per_host,
        ),
        monitor=args.monitor,
        cluster=args.cluster,
    )
    try:
        sock = open_socket(options.host, options.port)
    except OSError as exc:
        hint = (
            "is another hub running? pick another --port" if exc.errno == errno.EADDRINUSE else "check --host"
        )
        print(f"roomcast-hub: cannot listen on {options.host} port {options.port}: {exc.strerror}; {hint}",
              file=sys.stderr)  # fmt: skip
        return 1
    unavailable: list[str] = []
    with sock:
        try:
            store = HistoryStore.open(args.data_dir) if args.data_dir is not None else None
        except StoreError as exc:
            print(f"roomcast-hub: {exc}", file=sys.stderr)
            return 1
        with store or contextlib.nullcontext():
            try:
                trio.run(_serve, sock, options, store)
            # The nursery wraps these; `return` is not allowed in except*.
            except* (MonitorUnavailable, StoreError, ClusterError) as group:
                unavailable += (str(exc) for exc in group.exceptions)
    if unavailable:
        print(f"roomcast-hub: {unavailable[0]}", file=sys.stderr)
        return 1
    return 0


async def _serve(sock: socket.socket, options: ServerOptions, store: HistoryStore | None) -> None:
    await HubServer(sock, options, store).serve()


if __name__ == "__main__":
    sys.exit(main())
