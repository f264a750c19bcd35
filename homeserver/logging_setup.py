"""Logging to stderr, each line carrying the request ID from `rest.http.request_id_var`."""

from __future__ import annotations

import logging
import sys

from twisted.python import log as twisted_log


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from rest.http import request_id_var

        record.request_id = request_id_var.get()
        return True


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s - %(name)s - %(levelname)s - %(request_id)s - %(message)s"
    ))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Route Twisted's own log through stdlib logging.
    twisted_log.PythonLoggingObserver(loggerName="twisted").start()
