"""What a feature costs a path of bench.speed: the same path with it on and off."""

from __future__ import annotations

import functools
from typing import Any

from . import load, processes
from .figures import Rate, best_of

# Turns of each side (as bench.speed takes them).
ROUNDS = 3


def measure_metrics(served: Any) -> tuple[Rate, Rate]:
    """The cached thumbnail with metrics on (the default) against them off."""
    with processes.Uvicorn(
        served.storage, served.redis_url, env={'ASGI_LOOK_METRICS': '0'}
    ) as quiet:
        load.warm(quiet.base_url, [served.thumbnail])
        on, off = best_of(
            [
                functools.partial(
                    served.wrk_get, served.server.base_url, served.thumbnail
                ),
                functools.partial(served.wrk_get, quiet.base_url, served.thumbnail),
            ],
            ROUNDS,
            key=_rate,
        )
    return on, off


def _rate(result: Rate) -> float:
    return result.rate
