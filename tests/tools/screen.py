"""Regular expressions for the lines ``roomcast`` prints in piped mode (see ``client/render.py``).

Room lines (``12:03 [ops] <alice> hello``, private ``12:03 [private] <bob> psst``) go to stdout;
presence notices (``12:03 [ops] * bob joined``), the client's own notices (``12:03 -- ...``)
and errors (``12:03 !! ...``) go to stderr.  Each pattern matches one whole line.
"""

from __future__ import annotations

import re

CLOCK = r"\d\d:\d\d"


def said(room: str, nick: str, body: str) -> str:
    """A room line on stdout."""
    return rf"^{CLOCK} \[{re.escape(room)}\] <{re.escape(nick)}> {re.escape(body)}$"


def private(nick: str, body: str) -> str:
    """A private message on stdout."""
    return rf"^{CLOCK} \[private\] <{re.escape(nick)}> {re.escape(body)}$"


def presence(room: str, nick: str, phrase: str) -> str:
    """A presence notice on stderr: ``joined``, ``left``, ``left (quit)``, ``is now known as X``."""
    return rf"^{CLOCK} \[{re.escape(room)}\] \* {re.escape(nick)} {re.escape(phrase)}$"


def notice(text: str) -> str:
    """One of the client's own notices on stderr (``text`` is a regex)."""
    return rf"^{CLOCK} -- {text}$"


def error(text: str) -> str:
    """An error line on stderr (``text`` is a regex)."""
    return rf"^{CLOCK} !! {text}$"
