"""Run ``Procfile.cluster`` (``make cluster``) under honcho on free loopback ports, and watch a
NATS JetStream cluster form through the servers' monitor ports.

The demo's ports are fixed (4222, 9999, ...); a test moves every one of them to a free port and
the scratch folder into its own temporary directory, so it never meets a running demo or
another test.  honcho starts each process in a session of its own: :func:`running_procfile`
remembers those process groups and kills each of them at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from tests.tools.liveproc import BIN, REPO
from tests.tools.ports import distinct_free_ports
from tests.tools.processes import end, spawn

PROCFILE = REPO / "Procfile.cluster"
LOOPBACK = "127.0.0.1"
#: A port number as the Procfile writes it: after ``127.0.0.1:`` or a ``--port``-like flag.
_PORT = re.compile(r"(?<=127\.0\.0\.1:)\d+|(?<=--port )\d+|(?<=--http_port )\d+")


def procfile_ports(text: str) -> list[int]:
    return sorted({int(port) for port in _PORT.findall(text)})


def procfile_on_free_ports(tmp_path: Path) -> tuple[Path, dict[int, int]]:
    """A copy of Procfile.cluster with every port moved to a free one and the scratch folder
    in ``tmp_path``; returns it and the port mapping (the demo's port -> the test's)."""
    text = PROCFILE.read_text()
    demo = procfile_ports(text)
    mapping = dict(zip(demo, distinct_free_ports(len(demo)), strict=True))
    moved = _PORT.sub(lambda match: str(mapping[int(match.group())]), text)
    moved = moved.replace(".cluster/", f"{tmp_path / 'cluster'}/")
    path = tmp_path / "Procfile.cluster"
    path.write_text(moved)
    return path, mapping


@attrs.define
class Honcho:
    proc: subprocess.Popen[bytes]
    log_path: Path
    #: Process groups of honcho's children (each has its own session), seen while it ran.
    groups: set[int] = attrs.Factory(set)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def note_children(self) -> None:
        """Remember the process group of every descendant honcho has now (honcho runs each
        program from a process of its own, in a new session)."""
        parents: dict[int, tuple[int, int]] = {}  # pid -> (ppid, pgrp)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))
        family = {self.proc.pid}
        for _ in range(8):  # a few levels deep is plenty: honcho, its runner, sh, the program
            family |= {pid for pid, (ppid, _) in parents.items() if ppid in family}
        self.groups |= {parents[pid][1] for pid in family if pid in parents}

    def interrupt(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as a terminal sends it to the foreground job; wait for honcho to end."""
        self.note_children()
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def kill_all(self) -> None:
        self.note_children()
        for group in {self.proc.pid, *self.groups}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@contextmanager
def running_procfile(procfile: Path, *names: str) -> Iterator[Honcho]:
    """``honcho -f PROCFILE start NAMES...`` in a session of its own, killed at the end."""
    log_path = procfile.parent / f"honcho-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        proc = spawn(
            [str(BIN / "honcho"), "--no-colour", "-f", str(procfile), "start", *names],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=procfile.parent,
        )  # fmt: skip
    honcho = Honcho(proc, log_path)
    try:
        yield honcho
    finally:
        honcho.kill_all()
        end(proc, signal.SIGKILL)


def monitor_json(port: int, path: str) -> tuple[int, Any]:
    """GET a NATS monitor endpoint: (HTTP status, parsed JSON or None); (0, None) if down."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=2.0) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def jetstream_cluster_formed(monitor_ports: list[int], size: int) -> bool:
    """Every node is healthy with JetStream on and sees one meta leader in a cluster of
    ``size``, and the leader sees every other peer current (followers do not track each other)."""
    metas = []
    for port in monitor_ports:
        status, _ = monitor_json(port, "/healthz?js-enabled-only=true")
        _, jsz = monitor_json(port, "/jsz")
        meta = (jsz or {}).get("meta_cluster") or {}
        if status != 200 or meta.get("cluster_size") != size:
            return False
        metas.append(meta)
    leaders = {meta.get("leader") for meta in metas}
    if len(leaders) != 1 or not next(iter(leaders)):
        return False
    (leader,) = leaders
    on_leader = [m for m in metas if leader not in {peer.get("name") for peer in m.get("replicas") or []}]
    return any(
        len(m.get("replicas") or []) == size - 1 and all(p.get("current") for p in m["replicas"])
        for m in on_leader
    )


def wait_for(condition: Any, what: str, honcho: Honcho, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        honcho.note_children()  # so that they are killed even if honcho dies first
        if condition():
            return
        if honcho.proc.poll() is not None:
            raise AssertionError(f"honcho ended while waiting for {what}:\n{honcho.log()[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{honcho.log()[-3000:]}")
