"""The progress display of :func:`tickpipe.run`: one line on stderr, redrawn in place, when
the session is interactive (a terminal or a notebook)."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

ProgressFn = Callable[[int, int, int], None]


def interactive() -> bool:
    """True in a terminal (stderr is a TTY) or a Jupyter/IPython kernel."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Display:
    """Draws ``rows, MB read of MB, rows/s`` on one line; :meth:`close` ends the line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, rows: int, bytes_read: int, bytes_total: int) -> None:
        secs = max(time.monotonic() - self.started, 1e-9)
        pct = f" {100.0 * bytes_read / bytes_total:5.1f}%" if bytes_total else ""
        line = (
            f"tickpipe:{pct} {rows:,} rows, {bytes_read / 1e6:,.1f} of {bytes_total / 1e6:,.1f} MB,"
            f" {rows / secs:,.0f} rows/s"
        )
        self.stream.write("\r" + line.ljust(78))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
