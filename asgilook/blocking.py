"""Blocking work off the event loop: one way for all of it.

Every blocking call asgilook makes (a file read or write, a SQLite
statement, a Pillow decode) is awaited as `run(pool, function, *args)`:

- `FILES` (the loop's default executor) for file I/O;
- the store's Pillow pool (`image_workers` threads) for decoding uploads,
  so that at most that many images are decoded at once;
- the catalog's reader and writer threads (a SQLite connection belongs to
  one thread);
- a render process pool (imaging/renderers.py) for thumbnails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar, TypeVarTuple

_T = TypeVar('_T')
_Ts = TypeVarTuple('_Ts')

# The pool of file I/O: the event loop's default executor.
FILES: Executor | None = None


async def run(pool: Executor | None, function: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
    """Call function(*args) in pool, and return what it returns."""
    return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
