"""Cluster mode under faults, with real processes: a 3-node NATS JetStream cluster (streams with
3 replicas), hubs on it, a node frozen with SIGSTOP and the stream leader killed with -9."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomcast.shared import events
from tests.tools.chatclient import ChatClient
from tests.tools.hubproc import BIN, free_udp_port, wait_until_answering
from tests.tools.natsproc import (
    NATS_ENV,
    NatsNode,
    cluster_hubs,
    free_tcp_port,
    nats_nodes,
    stream_leader,
    wait_for,
)
from tests.tools.processes import end, spawn

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def nats3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsNode]]:
    with nats_nodes(tmp_path_factory.mktemp("nats3"), 3) as nodes:
        yield nodes


def healthz(port: int) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def varz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=2) as response:
        found: dict[str, object] = json.load(response)
        return found


class Sayer(threading.Thread):
    """Says one line and keeps the answer (the request may wait through an outage)."""

    def __init__(self, client: ChatClient, room: str, body: str) -> None:
        super().__init__(daemon=True)
        self.client, self.room, self.body = client, room, body
        self.answer: events.Reply | events.Error | None = None

    def run(self) -> None:
        self.answer = self.client.request(events.Say(id=0, room=self.room, body=self.body), timeout=60)


def test_a_hub_cut_off_from_nats_answers_unavailable_then_resumes(
    tmp_path: Path, nats3: list[NatsNode]
) -> None:
    cut_node = nats3[0]
    monitor = free_tcp_port()
    others = ",".join(node.url for node in nats3[1:])
    with (
        cluster_hubs(tmp_path, cut_node.url, 1, "--monitor", f"127.0.0.1:{monitor}") as (cut,),
        cluster_hubs(tmp_path, others, 1) as (fine,),
    ):
        assert "(3 replicas)" in cut.log() + fine.log()
        assert healthz(monitor) == (200, {"status": "ok"})
        alice, bob = ChatClient(cut.address, "alice"), ChatClient(fine.address, "bob")
        try:
            alice.join("cut")
            bob.join("cut")
            assert isinstance(alice.say("cut", "one"), events.Reply)
            cut_node.kill(signal.SIGSTOP)
            try:
                two = Sayer(alice, "cut", "two")
                two.start()
                wait_for(lambda: healthz(monitor)[0] == 503, 30, "/healthz 503")
                assert healthz(monitor)[1]["status"] == "nats-unavailable"
                three = Sayer(alice, "cut", "three")
                three.start()
                alice.wait_for(
                    lambda: any(e.code == "unavailable" and e.after > 0 for e in alice.errors), "unavailable"
                )
                meanwhile = bob.say("cut", "meanwhile")  # the rest of the cluster goes on
                assert isinstance(meanwhile, events.Reply), meanwhile
            finally:
                cut_node.kill(signal.SIGCONT)
            wait_for(lambda: healthz(monitor)[0] == 200, 60, "/healthz 200 again")
            two.join(60)
            three.join(60)
            assert isinstance(two.answer, events.Reply) and isinstance(three.answer, events.Reply), (
                two,
                three,
            )
            assert 0 < two.answer.seq < three.answer.seq
            wanted = {"two", "three", "one"}
            bob.wait_for(lambda: wanted <= {getattr(e, "body", "") for e in bob.seen("cut")}, "every line")
            bodies = [e.body for e in bob.seen("cut") if isinstance(e, events.Deliver)]
            assert bodies.count("two") == bodies.count("three") == 1, bodies
            assert bodies.index("two") < bodies.index("three")
            cluster = varz(monitor)["cluster"]
            assert isinstance(cluster, dict) and cluster["available"] is True and cluster["nats_server"]
        finally:
            alice.close()
            bob.close()


def test_killing_the_stream_leader_loses_and_doubles_no_confirmed_line(
    tmp_path: Path, nats3: list[NatsNode], record_property: pytest.RecordProperty
) -> None:
    urls = ",".join(node.url for node in nats3)
    with cluster_hubs(tmp_path, urls, 2) as (one, two):
        sender, receiver = ChatClient(one.address, "sender"), ChatClient(two.address, "receiver")
        try:
            sender.join("lead")
            receiver.join("lead")
            leader = stream_leader(nats3, "roomcast_rooms_0")
            assert leader is not None
            confirmed: list[tuple[float, int]] = []
            for n in range(40):
                if n == 10:
                    leader.kill(signal.SIGKILL)
                answer = sender.request(events.Say(id=0, room="lead", body=f"line {n}"), timeout=60)
                assert isinstance(answer, events.Reply), answer
                confirmed.append((time.monotonic(), answer.seq))
            seqs = [seq for _, seq in confirmed]
            assert seqs == sorted(seqs) and len(set(seqs)) == 40
            pause = max(b[0] - a[0] for a, b in itertools.pairwise(confirmed))
            record_property("leader_kill_pause_s", round(pause, 2))
            print(f"write pause when the stream leader was killed: {pause:.2f} s")
            receiver.wait_for(lambda: set(seqs) <= {e.seq for e in receiver.seen("lead")}, "every line", 60)
            bodies = [e.body for e in receiver.seen("lead") if isinstance(e, events.Deliver)]
            assert bodies == [f"line {n}" for n in range(40)], bodies
        finally:
            sender.close()
            receiver.close()


def test_a_hub_started_before_its_jetstream_cluster_has_a_quorum_waits_for_it(tmp_path: Path) -> None:
    """One node of three is up: JetStream has no leader and answers nothing.  The hub waits
    for it instead of exiting, and serves once the other two nodes are up."""
    with nats_nodes(tmp_path, 3, started=1) as nodes:
        hub_log = tmp_path / "hub.log"
        port = free_udp_port()
        argv = [str(BIN / "roomcast-hub"), "--host", "127.0.0.1", "--port", str(port), "--log-level", "DEBUG",
                "--nats", nodes[0].url, "--nats-replicas", "3"]  # fmt: skip
        with hub_log.open("wb") as log_file:
            hub = spawn(argv, env=NATS_ENV, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: "waiting for JetStream" in hub_log.read_text(), 60, "the hub waiting for JetStream"
            )
            for node in nodes[1:]:
                node.start()
            wait_until_answering("127.0.0.1", port, timeout=90)
            client = ChatClient(("127.0.0.1", port), "early")
            try:
                client.join("hall")
                answer = client.request(events.Say(id=0, room="hall", body="quorum"), timeout=60)
                assert isinstance(answer, events.Reply), answer
            finally:
                client.close()
            assert hub.poll() is None, hub_log.read_text()[-2000:]
        finally:
            end(hub)
