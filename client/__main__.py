"""``python -m roomcast.client``: the same as the ``roomcast`` command."""

import sys

from roomcast.client.cli import main

if __name__ == "__main__":
    sys.exit(main())
