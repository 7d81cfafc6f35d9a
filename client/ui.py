"""Placeholder until the prompt UI lands: the interactive mode runs the line mode."""

from __future__ import annotations

import trio

from client.options import ClientOptions
from client.piped import run_piped


def run_interactive(options: ClientOptions) -> int:
    return trio.run(run_piped, options)
