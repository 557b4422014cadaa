"""A log handler that keeps ERROR lines: "unhandled error for update …" means a handler raised."""

from __future__ import annotations

import logging


class ErrorLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
