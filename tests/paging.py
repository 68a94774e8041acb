"""Pages of the list in the tests: upload many, follow the Link headers; long lists."""

import dataclasses
import pathlib
import re
import sqlite3

from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME

from .fakes import upload_through

# What a page's Link header says: the next page, as a URL of this service.
LINK = re.compile(
    r'<(/images\?limit=([0-9]+)(?:&order=newest)?&after=([A-Za-z0-9_-]+))>; rel="next"'
)
# Small pictures: no thumbnails to render, quick to upload.
SMALL = (32, 24)


def next_page(resp) -> str | None:
    """The URL the Link header of a page names as the next one, or None."""
    link = resp.headers.get('Link')
    if link is None:
        return None
    match = LINK.fullmatch(link)
    assert match is not None, link
    return match[1]


async def upload_many(conductor, count: int) -> list[dict]:
    return [await upload_through(conductor, SMALL) for _ in range(count)]


async def walk(conductors, uri='/images?limit=3') -> list[list[dict]]:
    """Follow the Links from uri to the last page, asking each worker in turn."""
    pages = []
    while uri is not None:
        resp = await conductors[len(pages) % len(conductors)].simulate_get(uri)
        assert resp.status_code == 200
        pages.append(resp.json)
        uri = next_page(resp)
    return pages


def ids(images) -> list[str]:
    return [image['id'] for image in images]


def long_lists(config, at_once=3, batch=2, largest_entry=1000, long_lists=4):
    """The config, answering lists of more than at_once images a batch at a time.

    At most long_lists at once; keeping no answer over largest_entry bytes
    (the lists of these tests have more than 1000 bytes).
    """
    config.catalog_limits = dataclasses.replace(
        config.catalog_limits,
        listed_at_once=at_once,
        list_batch=batch,
        long_lists=long_lists,
    )
    config.cache_timing = dataclasses.replace(
        config.cache_timing, entry_read_rate=int(largest_entry / config.redis_timeout)
    )
    return config


def snapshots_closed(storage_path) -> bool:
    """Whether no read transaction holds the catalog (a checkpoint can finish)."""
    path = pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME
    with sqlite3.connect(path) as connection:
        busy, _, _ = connection.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
    return busy == 0
