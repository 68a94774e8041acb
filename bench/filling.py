"""Storage directories of many images without uploads: hard links, then a reindex.

A filled directory holds hard links to a few real 640x480 JPEGs under the
names the catalog gives images, and is cataloged by `asgilook.reindex.reindex`,
the code path of `python -m asgilook reindex`. A directory filled under a work
directory is kept with a note of what it holds, and used again by later runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import io
import json
import logging
import os
import random
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

import PIL.Image
import PIL.ImageDraw

from asgilook import files, reindex
from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME, Catalog
from asgilook.config import Config
from asgilook.signing import ServiceKey

SIZE = (640, 480)
SOURCES = 4
_COLOURS = ['teal', 'darkorange', 'slateblue', 'olivedrab']


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
        return self.directory / CATALOG_DIRECTORY / DATABASE_NAME


def jpeg(number: int) -> bytes:
    """Return a 640x480 JPEG, a different picture for each number."""
    image = PIL.Image.new('RGB', SIZE, _COLOURS[number % len(_COLOURS)])
    draw = PIL.ImageDraw.Draw(image)
    noise = random.Random(number)
    for _ in range(40):
        x, y = noise.randrange(SIZE[0]), noise.randrange(SIZE[1])
        colour = tuple(noise.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + 80, y + 60), fill=colour)
    output = io.BytesIO()
    image.save(output, 'JPEG', quality=85)
    return output.getvalue()


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
    # What a server's first start makes in the directory: made after the
    # reindex, it would move the directory's time, and that start would read
    # the whole directory again.
    (directory / files.TEMPORARY_DIRECTORY).mkdir()
    asyncio.run(_make_service_key(directory))
    link_images(directory, sources, images)
    filling = time.perf_counter() - started
    started = time.perf_counter()
    report = asyncio.run(reindexed(directory))
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
            path.write_bytes(jpeg(number))
        originals.append(path)
    targets = list(originals)
    lengths = [path.stat().st_size for path in originals]
    ids = random.Random(images)
    for number in range(images):
        which = number % SOURCES
        image_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
        name = files.file_name(image_id, SIZE, lengths[which])
        try:
            os.link(targets[which], directory / name)
        except OSError as ex:
            if ex.errno != errno.EMLINK:
                raise
            # ext4 takes 65 000 links to a file: link to a new copy.
            targets[which] = sources / f'{which}-{number}.jpeg'
            shutil.copyfile(originals[which], targets[which])
            os.link(targets[which], directory / name)


async def reindexed(directory: Path) -> reindex.Report:
    """Catalog a storage directory as `python -m asgilook reindex` does.

    Without its log lines (20 names of adopted files, and a summary).
    """
    logger = logging.getLogger(reindex.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)
    catalog = Catalog(directory)
    try:
        await catalog.open()
        report = await reindex.reindex(catalog)
    finally:
        await catalog.close()
        catalog.shutdown()
        logger.setLevel(level)
    return report


async def _make_service_key(directory: Path) -> None:
    config = Config()
    config.storage_path = directory
    await ServiceKey(config).load()


def read_catalog(filled: Filled, sql: str, *args: object) -> list[tuple]:
    """Run a query on a catalog, read-only."""
    uri = f'{filled.catalog_path.as_uri()}?mode=ro'
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        return connection.execute(sql, args).fetchall()
