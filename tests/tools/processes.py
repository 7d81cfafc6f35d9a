"""Every subprocess a test starts, owned: from a clean environment, in a process group of its
own, and always ended.

:func:`spawn` is the one way tests, fixtures and tools start a program that keeps running
(``subprocess.Popen``), :func:`run` the one way they run a program to its end.  Both start it
from :func:`clean_env` (nothing named ``ROOMCAST_*``, ``PORT`` or ``NO_COLOR`` comes in from the
developer's shell) as the leader of a new process group, so that :func:`end` can signal it
with everything it started (a shell's children, say) at once.

:func:`end` stops a process whatever its state: the signal asked for to its group, a bounded
wait, then SIGKILL to the group and to the groups of its descendants (``honcho`` starts its
processes in sessions of their own), and its pipes closed, so no ``ResourceWarning`` can fail a
later test.  Helpers call it in their ``finally``; and whatever a test started and did not end
is ended by the autouse fixture in ``tests/conftest.py`` when the test is over, so no process
outlives its test even when a helper forgot one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]

#: Environment variables that would change what the programs under test do.
SCRUBBED = ("ROOMCAST_", "PORT", "NO_COLOR")
#: How long :func:`end` waits after the polite signal, and after SIGKILL.
GRACE = 5.0
KILL_WAIT = 10.0

#: Processes spawned and not yet ended, oldest first.
_owned: list[subprocess.Popen[Any]] = []
#: Process groups adopted: started by a spawned program in a session of their own.
_adopted: dict[int, subprocess.Popen[Any]] = {}


def clean_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The test's environment without ROOMCAST_*/PORT/NO_COLOR, with ``.venv/bin`` first on
    PATH, unbuffered Python and the repository importable; then ``extra`` on top (a value of
    None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO)
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def spawn(
    argv: Sequence[str], env: Mapping[str, str | None] | None = None, **popen: Any
) -> subprocess.Popen[Any]:
    """Start ``argv`` from :func:`clean_env` (plus ``env``) as a new process group's leader;
    the process is owned until :func:`end` (or the end of the test) stops it."""
    popen.setdefault("cwd", REPO)
    proc: subprocess.Popen[Any] = subprocess.Popen(
        list(argv), env=clean_env(env), start_new_session=True, **popen
    )
    _owned.append(proc)
    return proc


def run(
    argv: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float = 30.0,
    capture_output: bool = True,
    text: bool = False,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` from a clean environment, stdin empty unless ``input`` is given; on
    timeout the whole group is killed and ``TimeoutExpired`` raised."""
    pipe = subprocess.PIPE if capture_output else None
    proc = spawn(
        argv, env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=pipe, stderr=pipe, text=text, cwd=cwd,
    )  # fmt: skip
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        end(proc, signal.SIGKILL)
        raise
    end(proc)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def adopt(pid: int, owner: subprocess.Popen[Any]) -> None:
    """``pid`` leads a process group ``owner`` started (e.g. honcho's hub, in its own
    session): it is killed with ``owner``, even if ``owner`` died first and orphaned it."""
    _adopted[pid] = owner


def owned() -> list[subprocess.Popen[Any]]:
    """The processes spawned and not ended yet, oldest first."""
    return list(_owned)


def end(
    proc: subprocess.Popen[Any],
    sig: int = signal.SIGTERM,
    grace: float = GRACE,
    readers: Sequence[threading.Thread] = (),
) -> int:
    """Stop ``proc`` with ``sig`` (to its whole group), SIGKILL after ``grace`` seconds, kill
    what it left behind, let the threads reading its output finish (bounded), close its
    pipes; its exit status."""
    groups = [proc.pid, *_descendant_groups(proc.pid)]
    groups += [pid for pid, owner in _adopted.items() if owner is proc]
    _signal(proc, sig)
    try:
        code = proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL)
        code = proc.wait(timeout=KILL_WAIT)
    for group in groups:  # what it started and left running (the group outlives its leader)
        _signal_group(group, signal.SIGKILL)
    for pid in [pid for pid, owner in _adopted.items() if owner is proc]:
        del _adopted[pid]
    for reader in readers:
        reader.join(timeout=KILL_WAIT)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            with contextlib.suppress(OSError):
                stream.close()
    if proc in _owned:
        _owned.remove(proc)
    return code


def end_all_but(keep: Sequence[subprocess.Popen[Any]] = ()) -> list[str]:
    """End every owned process not in ``keep`` (newest first); what each was, for a report."""
    ended = []
    for proc in reversed(owned()):
        if not any(proc is kept for kept in keep):
            ended.append(" ".join(map(str, proc.args if isinstance(proc.args, list) else [proc.args]))[:120])
            end(proc, signal.SIGKILL)
    return ended


def _signal(proc: subprocess.Popen[Any], sig: int) -> None:
    """``sig`` to ``proc``'s group; to ``proc`` alone if it leads no group (a process that some
    code started without :func:`spawn`).  Never both: a second SIGTERM would cut a drain short."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    except PermissionError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _descendant_groups(pid: int) -> list[int]:
    """Process groups led by descendants of ``pid`` other than its own (from /proc)."""
    groups: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            children = [int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            with contextlib.suppress(OSError, ValueError):
                if os.getpgid(child) == child:
                    groups.append(child)
            todo.append(child)
    return groups
