"""Progress for people and for log files: a bar in a terminal, plain lines elsewhere.

A tqdm bar redraws itself with carriage returns several times a second. In a terminal that
is what a person wants; written to a file it becomes thousands of updates on one line that
bury everything else. So when standard error is neither a terminal nor a notebook,
:func:`progress` writes a whole line at most every ``LINE_INTERVAL`` seconds (and the
trainer's :class:`~aeclust.training.ProgressBar` one line per epoch) instead.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.std import tqdm as plain_tqdm

LINE_INTERVAL = 30.0  # seconds between two progress lines in a log file


def interactive(stream=None) -> bool:
    """True when a bar can redraw itself: ``stream`` (default stderr) is a terminal, or
    this is a Jupyter notebook (where tqdm.auto draws a widget)."""
    stream = sys.stderr if stream is None else stream
    if any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__):  # tqdm.auto's pick
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)`` in a terminal; elsewhere the same counter written as
    one line every :data:`LINE_INTERVAL` seconds and once at the end."""
    if kwargs.get("disable") or interactive():
        return tqdm(iterable, **kwargs)
    kwargs.setdefault("leave", True)  # the last line says how it ended
    kwargs.update(file=_Lines(sys.stderr), mininterval=LINE_INTERVAL, ncols=100)
    return plain_tqdm(iterable, dynamic_ncols=False, **kwargs)


class _Lines:
    """A file for tqdm that turns each redraw (``"\\r" + status``) into a line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()
