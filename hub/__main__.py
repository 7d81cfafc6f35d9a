"""``python -m roomcast.hub``: the same as the ``roomcast-hub`` command."""

import sys

from roomcast.hub.cli import main

if __name__ == "__main__":
    sys.exit(main())
