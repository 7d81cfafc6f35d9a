"""The built wheel: one ``roomcast`` namespace, a clean build, and commands that work from it.

Builds the project with ``python -m build`` (as a packager would), looks inside the wheel,
installs it into a fresh venv and chats through the hub that venv's ``roomcast-hub`` starts."""

from __future__ import annotations

import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools.clientproc import PipedClient
from tests.tools.hubproc import running_hub
from tests.tools.processes import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dist")
    result = run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], text=True, timeout=240)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    (wheel,) = out.glob("*.whl")
    return wheel, log


@pytest.fixture(scope="module")
def installed(build: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with only the wheel (and its dependencies) in it; yields its bin folder."""
    env_dir = tmp_path_factory.mktemp("wheelvenv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    # Away from the repository (its roomcast.egg-info would pass for an installed roomcast).
    done = run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(build[0])],
        env={"PYTHONPATH": None}, text=True, timeout=240, cwd=env_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield bin_dir


def test_wheel_installs_only_the_roomcast_namespace(build: tuple[Path, str]) -> None:
    with zipfile.ZipFile(build[0]) as wheel:
        tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert tops - dist_info == {"roomcast"}, tops
    assert len(dist_info) == 1
    with zipfile.ZipFile(build[0]) as wheel:
        names = set(wheel.namelist())
    assert {"roomcast/hub/cli.py", "roomcast/client/cli.py", "roomcast/shared/envelope.py"} <= names
    assert "roomcast/shared/data/confusables.txt" in names, "the look-alike data ships"
    assert any(name.endswith("/licenses/LICENSE") for name in names), "the licence file ships"


def test_build_prints_no_deprecation_warning(build: tuple[Path, str]) -> None:
    assert "deprecat" not in build[1].lower(), build[1]


def test_commands_from_the_wheel_chat_in_a_fresh_venv(installed: Path, tmp_path: Path) -> None:
    for module in ("roomcast.hub", "roomcast.client"):
        done = run([str(installed / "python"), "-m", module, "--help"], text=True, timeout=60)
        assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stderr
    with running_hub(tmp_path, bin_dir=installed) as hub:
        bob = PipedClient(hub.port, "bob", tmp_path, room="wheel", bin_dir=installed)
        alice = PipedClient(hub.port, "alice", tmp_path, room="wheel", bin_dir=installed)
        try:
            bob.wait_for(lambda: "connected as bob" in bob.err.read_text(), "bob in the room")
            alice.say("from the wheel")
            bob.wait_for(lambda: "from the wheel" in bob.bodies(), "alice's line at bob")
        finally:
            alice.kill()
            bob.kill()
