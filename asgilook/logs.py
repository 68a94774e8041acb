"""asgilook's log lines: time, level and process id, unless the user chose otherwise."""

from __future__ import annotations

import copy
import logging
from typing import Any, TextIO

from uvicorn.config import LOGGING_CONFIG

# 2026-11-21 18:40:00,123 WARNING asgilook.cache[12345]: Redis does not answer
FORMAT = '%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s'


def configure(
    logger: logging.Logger | None = None, stream: TextIO | None = None
) -> bool:
    """Give asgilook's loggers a handler to stream (stderr) in FORMAT, at INFO.

    Left alone (False) where logging already reaches a handler: one the user
    configured (uvicorn's --log-config, logging.basicConfig) or this one.
    Python's last resort otherwise prints bare messages, and with several
    workers nobody can tell who said what.
    """
    logger = logger or logging.getLogger('asgilook')
    if logger.hasHandlers():
        return False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return True


def uvicorn_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its lines in FORMAT as asgilook's are."""
    config = copy.deepcopy(LOGGING_CONFIG)
    formatters = config['formatters']
    formatters['default']['fmt'] = FORMAT
    formatters['access']['fmt'] = FORMAT.replace(
        '%(message)s', '%(client_addr)s - "%(request_line)s" %(status_code)s'
    )
    return config
