"""The package's one status channel: :mod:`logging` under the ``srgan_lib`` logger.

Library modules log with ``logging.getLogger(__name__)``: progress and decisions at
INFO ("downloading ...", "finished already"), anything a user must know at WARNING
(random VGG weights, skipped files). Long loops show tqdm bars instead. Nothing is
printed unless a program asks: the ``srgan`` command and the notebooks call
:func:`setup`, which shows INFO and above as plain lines; a program that never calls
it still sees WARNINGs (Python's last-resort handler prints them to stderr).
"""

from __future__ import annotations

import logging
import sys

ROOT = "srgan_lib"


class _Handler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is at each message, not as it was at setup.

    (Jupyter and pytest replace ``sys.stderr``; a handler holding the old object would write to a closed file.)
    """

    def __init__(self, stream=None):
        super().__init__(stream or sys.stderr)
        self._fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if not self._fixed:
            self.stream = sys.stderr
        super().emit(record)


class _Format(logging.Formatter):
    """INFO as the bare message; WARNING and above prefixed with their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname}: {message}"


def setup(level: int | str = logging.INFO, stream=None) -> logging.Logger:
    """Show the package's messages at ``level`` and above on ``stream`` (default: stderr).

    Calling it again replaces the handler it added before (so a notebook cell can be re-run).
    """
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_srgan", False)]:
        logger.removeHandler(handler)
    handler = _Handler(stream)
    handler.setFormatter(_Format())
    handler._srgan = True
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger
