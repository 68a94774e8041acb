"""Uploads while `python -m asgilook reindex` lists a directory of files copied in.

Run from the repository root (needs redis-server):

    python -m bench.reindex_uploads                        # 200 000 files
    python -m bench.reindex_uploads --images 50000 --code ../main

It serves an empty storage directory with uvicorn (one worker, its own
redis-server), hard-links the images into it as bench.filling does (files
copied in by hand: the worker does not list them), then runs `python -m
asgilook reindex` over it, from the tree --code names (this one by default),
while a client uploads a small image every 0.1 s. It reports how long the
reindex took and the uploads' latency while it ran (p50, p99, the longest,
and how many were not a 201).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from . import filling, pictures, processes

_INTERVAL = 0.1


def uploads_during(base_url: str, done: threading.Event) -> list[tuple[float, int]]:
    """Upload an image every _INTERVAL until done is set; (seconds, status) each."""
    body = pictures.small_png()
    answers = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        while not done.is_set():
            started = time.perf_counter()
            status = client.post('/images', content=body).status_code
            answers.append((time.perf_counter() - started, status))
            done.wait(_INTERVAL)
    return answers


def reindex(storage: Path, code: Path) -> tuple[float, str]:
    """Run the reindex command of the tree at code; its time and its summary."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, '-m', 'asgilook', 'reindex'],
        cwd=code,
        env=dict(os.environ, ASGI_LOOK_STORAGE_PATH=str(storage)),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f'python -m asgilook reindex failed:\n{done.stderr}')
    return seconds, done.stderr.strip().splitlines()[-1]


def measure(images: int, code: Path) -> None:
    with processes.temporary_redis() as (work, redis_url):
        storage = work / 'images'
        storage.mkdir()
        with processes.Uvicorn(storage, redis_url, log=work / 'uvicorn.log') as served:
            started = time.perf_counter()
            filling.link_images(storage, work / 'sources', images)
            print(f'linked {images} files in {time.perf_counter() - started:.1f} s')
            # The worker's first upload (its Pillow pool starting) is not timed.
            httpx.post(served.base_url + '/images', content=pictures.small_png())
            done = threading.Event()
            answers: list[tuple[float, int]] = []
            uploader = threading.Thread(
                target=lambda: answers.extend(uploads_during(served.base_url, done))
            )
            uploader.start()
            try:
                seconds, summary = reindex(storage, code)
            finally:
                done.set()
                uploader.join()
    latencies = sorted(latency for latency, _ in answers)
    failed = sum(status != 201 for _, status in answers)
    print(f'reindex ({code}): {seconds:.1f} s: {summary.split(": ", 1)[-1]}')
    print(
        f'{len(answers)} uploads meanwhile: p50 {statistics.median(latencies):.3f} s, '
        f'p99 {latencies[int(len(latencies) * 0.99)]:.3f} s, '
        f'longest {latencies[-1]:.3f} s, {failed} not 201'
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=200_000)
    parser.add_argument(
        '--code',
        type=Path,
        default=Path.cwd(),
        help='the tree whose `python -m asgilook reindex` runs (default: this one)',
    )
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    measure(arguments.images, arguments.code.resolve())


if __name__ == '__main__':
    main()
