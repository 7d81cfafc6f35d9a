"""``make test-under-load``: run a command while a busy loop holds one core.

CI shares its machine with other work; a suite that passes only on a quiet machine rejects good
work at random.  This starts one CPU-bound process (bounded: it stops by itself after
``--most`` seconds), runs the command, and stops the busy loop when the command ends, whether
it passed, failed or was interrupted.  The exit status is the command's.

    python -m tests.tools.busy [--most SECONDS] -- COMMAND [ARGS...]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from types import FrameType

from tests.tools.processes import end, spawn

#: The busy loop: pure Python arithmetic until its deadline.
BUSY = "import time\nend = time.monotonic() + {most}\nwhile time.monotonic() < end:\n    sum(range(1000))\n"


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="busy", description=__doc__.splitlines()[0])
    parser.add_argument("--most", type=float, default=1800.0, help="the busy loop stops after this long")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    signal.signal(signal.SIGTERM, _interrupted)
    busy = spawn([sys.executable, "-c", BUSY.format(most=args.most)], stdin=subprocess.DEVNULL)
    print(
        f"busy loop (pid {busy.pid}) holds one core while: {' '.join(command)}", file=sys.stderr, flush=True
    )
    try:
        return subprocess.call(command)
    finally:
        end(busy, signal.SIGKILL)
        print("busy loop stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
