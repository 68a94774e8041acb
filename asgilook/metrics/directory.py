"""The directory where the workers of one server keep their metrics together."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping

from ..config import Config

# Where prometheus_client keeps a process's values when processes share them.
VARIABLE = 'PROMETHEUS_MULTIPROC_DIR'


@contextlib.contextmanager
def shared_by_workers(
    workers: int, config: Config, environ: MutableMapping[str, str] | None = None
) -> Iterator[str | None]:
    """Give the workers of a server one directory for their metrics; its path.

    Made empty before they start (their environment names it) and removed
    when they have stopped, for several workers with metrics on; None
    otherwise, or when PROMETHEUS_MULTIPROC_DIR is set already (the
    operator's, used as it is).
    """
    environ = os.environ if environ is None else environ
    if workers < 2 or not config.metrics or config.metrics_directory is not None:
        yield None
        return
    directory = tempfile.mkdtemp(prefix='asgilook-metrics-')
    environ[VARIABLE] = directory
    try:
        yield directory
    finally:
        del environ[VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)
