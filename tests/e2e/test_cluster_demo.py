"""``make cluster``: Procfile.cluster under honcho starts a 3-node NATS JetStream cluster and
three hubs on loopback, and Ctrl-C stops all of it.

The NATS part runs the real ``nats-server`` from .venv/bin with the Procfile's own flags (every
port moved to a free one).  The whole demo, hubs included, needs ``roomcast-hub --nats``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.tools.clientproc import PipedClient
from tests.tools.honchoproc import (
    PROCFILE,
    jetstream_cluster_formed,
    monitor_json,
    procfile_on_free_ports,
    procfile_ports,
    running_procfile,
    wait_for,
)
from tests.tools.hubproc import BIN, wait_until_answering

NATS = ("nats1", "nats2", "nats3")
HUB_PORTS = (9999, 10000, 10001)
NATS_MONITORS = [8222, 8223, 8224]


def test_the_cluster_procfile_runs_three_nats_nodes_and_three_hubs_on_loopback_only() -> None:
    text = PROCFILE.read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    names = [line.split(":", 1)[0] for line in lines]
    assert names == [*NATS, "hub1", "hub2", "hub3"]
    for line in lines:
        hosts = re.findall(r"(?:--addr|--host) (\S+)", line) + re.findall(r"://([^:/,]+):", line)
        assert hosts and set(hosts) == {"127.0.0.1"}, line
    hubs = [line for line in lines if line.startswith("hub")]
    for hub, port in zip(hubs, HUB_PORTS, strict=True):
        assert f"--port {port} " in hub and "--nats nats://127.0.0.1:" in hub
    assert all("--store_dir .cluster/" in line for line in lines if line.startswith("nats"))
    assert ".cluster/" in Path(PROCFILE.parent / ".gitignore").read_text().splitlines()


def test_make_cluster_forms_a_jetstream_cluster_of_three_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    procfile, ports = procfile_on_free_ports(tmp_path)
    monitors = [ports[port] for port in NATS_MONITORS]
    with running_procfile(procfile, *NATS) as honcho:
        wait_for(lambda: jetstream_cluster_formed(monitors, 3), "a JetStream cluster of 3", honcho, 60.0)
        _, jsz = monitor_json(monitors[0], "/jsz")
        assert jsz["meta_cluster"]["name"] == "roomcast"
        assert jsz["config"]["store_dir"] == str(tmp_path / "cluster" / "n1" / "jetstream"), "scratch folder"

        honcho.interrupt()
        assert all(monitor_json(port, "/healthz")[0] == 0 for port in monitors), "a node outlived Ctrl-C"
        assert "stopped" in honcho.log()


def _hub_has_cluster_mode() -> bool:
    help_text = subprocess.run(
        [str(BIN / "roomcast-hub"), "--help"], capture_output=True, text=True, timeout=30
    )
    return "--nats" in help_text.stdout


@pytest.mark.skipif(not _hub_has_cluster_mode(), reason="roomcast-hub has no --nats yet (issue 12, hub side)")
def test_make_cluster_hubs_answer_and_a_room_spans_them(tmp_path: Path) -> None:
    procfile, ports = procfile_on_free_ports(tmp_path)
    hub_ports = [ports[port] for port in HUB_PORTS]
    with running_procfile(procfile) as honcho:
        wait_for(lambda: jetstream_cluster_formed([ports[p] for p in NATS_MONITORS], 3), "NATS", honcho, 60.0)
        try:
            _a_room_spans_the_hubs(hub_ports, tmp_path)
        except (AssertionError, TimeoutError) as failed:  # say why: the hubs' and nodes' output
            raise AssertionError(f"{failed}\nhoncho's log:\n{honcho.log()[-8000:]}") from None
        honcho.interrupt()


def _a_room_spans_the_hubs(hub_ports: list[int], tmp_path: Path) -> None:
    for port in hub_ports:
        wait_until_answering("127.0.0.1", port, timeout=60.0)
    alice = PipedClient(hub_ports[0], "alice", tmp_path, room="demo")
    bob = PipedClient(hub_ports[2], "bob", tmp_path, room="demo")
    try:
        for client in (alice, bob):
            client.wait_for(lambda c=client: "joined demo" in c.err.read_text(), "the join", timeout=60)
        alice.say("hello from hub 1")
        bob.wait_for(lambda: "hello from hub 1" in bob.bodies(), "alice's line on hub 3")
        bob.say("hello from hub 3")
        alice.wait_for(lambda: "hello from hub 3" in alice.bodies(), "bob's line on hub 1")
    finally:
        alice.kill()
        bob.kill()


def test_the_readme_nats_config_is_one_nats_server_accepts(tmp_path: Path) -> None:
    readme = (PROCFILE.parent / "README.md").read_text()
    scaling = readme[readme.index("## Scaling out") :]
    block = re.search(r"```conf\n(.*?)```", scaling, re.DOTALL)
    assert block is not None, "the Scaling out section has a NATS config"
    config = block.group(1)
    assert "jetstream" in config and "cluster" in config and "0.0.0.0" not in config
    path = tmp_path / "n1.conf"
    path.write_text(config)
    checked = subprocess.run(
        [str(BIN / "nats-server"), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_the_port_rewrite_moves_every_demo_port(tmp_path: Path) -> None:
    procfile, ports = procfile_on_free_ports(tmp_path)
    assert sorted(ports) == sorted(
        {4222, 4223, 4224, 6222, 6223, 6224, *NATS_MONITORS, *HUB_PORTS, 8080, 8081, 8082}
    )
    assert procfile_ports(procfile.read_text()) == sorted(ports.values())
    assert ".cluster/" not in procfile.read_text()
