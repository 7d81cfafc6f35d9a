"""The cluster-mode choices of one hub, apart from the NATS code (nats-py is an optional extra:
a standalone hub never imports it)."""

from __future__ import annotations

import attrs


class ClusterError(Exception):
    """Cluster mode cannot start (NATS unreachable, streams made differently): exit 1 with it."""


@attrs.frozen
class ClusterOptions:
    """The ``--nats``, ``--nats-replicas``, ``--cluster`` and ``--stream-shards`` choices."""

    servers: tuple[str, ...]
    cluster: str = "roomcast"
    #: None: 3 when the NATS system has at least 3 JetStream servers, else 1.
    replicas: int | None = None
    shards: int = 1
    hub_name: str = ""
