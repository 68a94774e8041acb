"""wrk on loopback: GETs of one URL or of a list of paths, POSTs of one body.

Every run fails if wrk saw a request fail (a status other than 2xx or 3xx,
or a socket error), and returns its rate and latency percentiles.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .figures import Rate

# Thread k of n asks for paths k + n, k + 2n, ... of the file BENCH_PATHS
# (n is BENCH_STEP): no path is asked twice before the list is through.
_PATHS_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local step = tonumber(os.getenv("BENCH_STEP"))
local threads = 0
function setup(thread)
  thread:set("next", threads)
  threads = threads + 1
end
function request()
  next = next + step
  return wrk.format(nil, paths[next % #paths + 1])
end
"""
_POST_SCRIPT = """
local source = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = source:read("*a")
source:close()
"""
_UNITS = {'us': 1e-6, 'ms': 1e-3, 's': 1.0}
# A request slower than this is a failure (wrk's own 2 s counts an upload
# queued behind a crowd of others as one).
TIMEOUT = '30s'


def installed() -> bool:
    return shutil.which('wrk') is not None


def require() -> None:
    """Exit with how to install wrk if it is not on PATH."""
    if not installed():
        sys.exit('this benchmark needs wrk on PATH: sudo apt-get install wrk')


def get(url: str, seconds: float, connections: int, threads: int = 2) -> Rate:
    """GET url for seconds over connections."""
    return _run([url], seconds, connections, threads, {})


def get_paths(
    base_url: str, paths: list[str], seconds: float, connections: int, threads: int
) -> Rate:
    """GET the paths in turn (each thread its share of them) for seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        script, listed = Path(tmp, 'paths.lua'), Path(tmp, 'paths')
        script.write_text(_PATHS_SCRIPT)
        listed.write_text('\n'.join(paths) + '\n')
        env = {'BENCH_PATHS': str(listed), 'BENCH_STEP': str(threads)}
        command = ['-s', str(script), base_url + '/']
        return _run(command, seconds, connections, threads, env)


def post(url: str, body: bytes, seconds: float, connections: int) -> Rate:
    """POST body to url for seconds over connections (2 threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        script, source = Path(tmp, 'post.lua'), Path(tmp, 'body')
        script.write_text(_POST_SCRIPT)
        source.write_bytes(body)
        env = {'BENCH_BODY': str(source)}
        return _run(['-s', str(script), url], seconds, connections, 2, env)


def _run(
    arguments: list[str],
    seconds: float,
    connections: int,
    threads: int,
    env: dict[str, str],
) -> Rate:
    command = ['wrk', f'-t{threads}', f'-c{connections}', f'-d{seconds}s']
    command.append(f'--timeout={TIMEOUT}')
    output = subprocess.run(
        [*command, '--latency', *arguments],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if 'Non-2xx' in output or 'Socket errors' in output:
        raise RuntimeError(f'wrk saw failed requests:\n{output}')
    return Rate(
        float(_find(r'Requests/sec:\s+([\d.]+)', output)[0]),
        _percentile(output, '50'),
        _percentile(output, '99'),
        int(_find(r'(\d+) requests in', output)[0]),
    )


def _percentile(output: str, which: str) -> float:
    value, unit = _find(rf'^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$', output)
    return float(value) * _UNITS[unit]


def _find(pattern: str, output: str) -> tuple[str, ...]:
    found = re.search(pattern, output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f'no {pattern!r} in the output of wrk:\n{output}')
    return found.groups()
