"""Storage directories of many images without uploads: hard links, then a reindex.

A filled directory holds hard links to a few real 640x480 JPEGs under the
names the catalog gives images, and is cataloged by `python -m asgilook
reindex`. A directory filled under a work directory is kept with a note of
what it holds, and used again by later runs. Only the layout the README
documents is used: image files named `{id}.{width}x{height}.{bytes}.jpeg`, the
catalog in `.catalog/catalog.sqlite3`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from . import pictures

SIZE = pictures.SWATCH_SIZE
SOURCES = 4
CATALOG = Path('.catalog', 'catalog.sqlite3')


@dataclasses.dataclass(frozen=True)
class Reindexed:
    """What a reindex reported: the images it lists, the files it ignored."""

    listed: int
    ignored: int


@dataclasses.dataclass
class Filled:
    """A storage directory of images, and what filling it cost."""

    directory: Path
    images: int
    fill_seconds: float
    reindex_seconds: float
    reused: bool = False

    @property
    def catalog_path(self) -> Path:
        return self.directory / CATALOG


def file_name(image_id: str, size: tuple[int, int], length: int) -> str:
    """Return the name asgilook stores an image of this size and length under."""
    return f'{image_id}.{size[0]}x{size[1]}.{length}.jpeg'


def filled(work: Path, images: int) -> Filled:
    """Return a storage directory of this many images under work, filled if need be."""
    directory = work / f'store-{images}'
    note = work / f'store-{images}.json'
    if note.exists() and directory.is_dir():
        recorded = json.loads(note.read_text())
        return Filled(
            directory,
            images,
            recorded['fill_seconds'],
            recorded['reindex_seconds'],
            reused=True,
        )
    shutil.rmtree(directory, ignore_errors=True)
    result = fill(directory, work / 'sources', images)
    note.write_text(
        json.dumps(
            {
                'images': images,
                'fill_seconds': result.fill_seconds,
                'reindex_seconds': result.reindex_seconds,
            }
        )
    )
    return result


def fill(directory: Path, sources: Path, images: int) -> Filled:
    """Hard-link images into a new storage directory, then reindex it."""
    started = time.perf_counter()
    directory.mkdir(parents=True)
    link_images(directory, sources, images)
    filling = time.perf_counter() - started
    started = time.perf_counter()
    report = reindexed(directory)
    if report.listed != images or report.ignored:
        raise RuntimeError(f'the reindex did not list the images: {report}')
    return Filled(directory, images, filling, time.perf_counter() - started)


def link_images(directory: Path, sources: Path, images: int) -> None:
    """Link images JPEG files into directory, named as the catalog names them."""
    sources.mkdir(parents=True, exist_ok=True)
    originals = []
    for number in range(SOURCES):
        path = sources / f'{number}.jpeg'
        if not path.exists():
            path.write_bytes(pictures.swatch(number))
        originals.append(path)
    targets = list(originals)
    lengths = [path.stat().st_size for path in originals]
    ids = random.Random(images)
    for number in range(images):
        which = number % SOURCES
        image_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
        name = file_name(image_id, SIZE, lengths[which])
        try:
            os.link(targets[which], directory / name)
        except OSError as ex:
            if ex.errno != errno.EMLINK:
                raise
            # ext4 takes 65 000 links to a file: link to a new copy.
            targets[which] = sources / f'{which}-{number}.jpeg'
            shutil.copyfile(originals[which], targets[which])
            os.link(targets[which], directory / name)


def reindexed(directory: Path) -> Reindexed:
    """Run `python -m asgilook reindex` on a storage directory; what it reported.

    It prepares the directory as a start does (the directory's time it
    records is then the one the next start finds). Its log lines (20 names
    of adopted files, and a summary) are read, not shown.
    """
    command = [sys.executable, '-m', 'asgilook', 'reindex']
    done = subprocess.run(
        command,
        env=dict(os.environ, ASGI_LOOK_STORAGE_PATH=str(directory)),
        capture_output=True,
        text=True,
    )
    summary = re.search(r'(\d+) images listed, .* (\d+) files ignored', done.stderr)
    if done.returncode or summary is None:
        raise RuntimeError(f'python -m asgilook reindex failed:\n{done.stderr}')
    return Reindexed(int(summary[1]), int(summary[2]))


def read_catalog(filled: Filled, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Run a query on a catalog, read-only."""
    uri = f'{filled.catalog_path.as_uri()}?mode=ro'
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        rows: list[tuple[Any, ...]] = connection.execute(sql, args).fetchall()
        return rows
