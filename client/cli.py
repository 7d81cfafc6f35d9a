"""``roomcast``: picks the front end.  A terminal gets the prompt UI; a pipe or a script gets
the line-by-line mode; ``--plain`` speaks plain text; ``stats`` prints the hub's counters."""

from __future__ import annotations

import os
import sys

import trio

from roomcast.client import render
from roomcast.client.options import ClientOptions, parse_args
from roomcast.client.piped import run_piped
from roomcast.client.plain import run_plain
from roomcast.client.runner import LinkRunner, open_hubs_socket
from roomcast.shared import events, link


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv, dict(os.environ))
    if options.command == "stats":
        return trio.run(run_stats, options)
    if options.plain:
        return trio.run(run_plain, options)
    if sys.stdin.isatty() and sys.stdout.isatty():
        from roomcast.client.ui import run_interactive  # prompt_toolkit is only needed here

        return run_interactive(options)
    return trio.run(run_piped, options)


async def run_stats(options: ClientOptions) -> int:
    """Open a short session, ask for the hub's stats, print them, leave."""
    hubs = options.hub_addresses
    result: list[link.LinkEvent] = []
    with open_hubs_socket(hubs) as sock:
        hub_link = link.HubLink(f"stats-{os.getpid()}", trio.current_time(), hubs=options.hubs)
        runner = LinkRunner(sock, hubs, hub_link, result.append)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(runner.run)
            runner.submit(events.Stats(id=0))
            while not any(isinstance(e, link.Answered | link.Unreachable | link.Problem) for e in result):
                await runner.changed.wait()
            runner.close()
            await runner.finished.wait()
            nursery.cancel_scope.cancel()
    for event in result:
        if isinstance(event, link.Answered):
            print("\n".join([event.reply.text, *event.reply.items]))
            return 0
        if isinstance(event, link.Unreachable | link.Problem):
            message = event.reason if isinstance(event, link.Unreachable) else event.error.text
            print(render.plain(render.error(message)), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
