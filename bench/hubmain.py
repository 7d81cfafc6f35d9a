"""``roomcast-hub`` as the benchmark runs it: the real CLI, with the per-host session cap lifted.

Every benchmark client comes from 127.0.0.1 (loopback only), and a room of 100 or 10,000 idle
sessions is far over ``MAX_CLIENTS_PER_ADDRESS_HOST`` (64), a defence against one host
filling the hub.  Only that cap changes; the hot path is the shipped one.
"""

from __future__ import annotations

import sys

from roomcast.shared import limits


def main() -> int:
    limits.MAX_CLIENTS_PER_ADDRESS_HOST = 1_000_000  # type: ignore[misc]
    from roomcast.hub.cli import main as hub_main

    return hub_main()


if __name__ == "__main__":
    sys.exit(main())
