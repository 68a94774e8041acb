"""Long lists and their clients: gone, leaving, reading nothing, too many at once."""

import asyncio
import gc
import json
import weakref

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import SqliteCatalog
from asgilook.errors import LongListsError
from asgilook.store import Store

from .asgi import body, get_whole, http_scope
from .fakes import redis_keys
from .paging import long_lists, snapshots_closed


async def test_a_client_gone_mid_list_lets_the_snapshot_go(
    config, storage_path, stored
):
    app = create_served_app(long_lists(config))
    sent = []

    async def receive():
        return {'type': 'http.request', 'body': b'', 'more_body': False}

    async def send(event):
        sent.append(event)
        if len(sent) == 3:
            raise OSError('the client went')

    scope = {
        'type': 'http',
        'asgi': {'version': '3.0', 'spec_version': '2.3'},
        'http_version': '1.1',
        'method': 'GET',
        'scheme': 'http',
        'path': '/images',
        'raw_path': b'/images',
        'query_string': b'',
        'root_path': '',
        'headers': [(b'host', b'localhost')],
        'client': ('127.0.0.1', 50000),
        'server': ('127.0.0.1', 8000),
    }
    async with falcon.testing.ASGIConductor(app):
        with pytest.raises(OSError, match='the client went'):
            await app(scope, receive, send)

    assert sent[0]['status'] == 200
    assert snapshots_closed(storage_path)


def _counting_reads(monkeypatch) -> list[int]:
    """Count the batches read from snapshots (one item a read)."""
    read = SqliteCatalog.read_snapshot
    reads: list[int] = []

    async def counted(self, snapshot, size):
        reads.append(size)
        return await read(self, snapshot, size)

    monkeypatch.setattr(SqliteCatalog, 'read_snapshot', counted)
    return reads


async def test_a_client_that_leaves_mid_list_stops_it(
    config, storage_path, stored, monkeypatch
):
    reads = _counting_reads(monkeypatch)
    app = create_served_app(long_lists(config, batch=1, largest_entry=100))

    async def leave_at_once(count, leave):
        leave()

    async with falcon.testing.ASGIConductor(app):
        status, _, content = await get_whole(app, '/images', on_chunk=leave_at_once)
        read_for_nobody = len(reads)
        whole = await get_whole(app, '/images')

    # Seven images, a batch each: the first ones were sent, then no more read.
    assert status == 200
    assert read_for_nobody < 7
    assert not content.endswith(b']')
    assert json.loads(whole[2]) == stored
    assert snapshots_closed(storage_path)


async def test_a_list_its_client_left_before_it_began_is_not_kept(
    config, storage_path, stored, monkeypatch
):
    reads = _counting_reads(monkeypatch)
    app = create_served_app(long_lists(config, batch=1, largest_entry=100_000))
    async with falcon.testing.ASGIConductor(app) as conductor:
        # falcon.testing's client leaves as soon as it has asked.
        left = await conductor.simulate_get('/images')
        keys = await redis_keys(config)
        read_for_nobody = len(reads)
        _, sent, content = await get_whole(app, '/images')

    assert left.status_code == 499
    assert left.json['title'] == 'Client gone'
    assert read_for_nobody < 7
    assert keys == []
    assert sent['x-asgilook-cache'] == 'Miss'
    assert json.loads(content) == stored
    assert snapshots_closed(storage_path)


async def test_more_long_lists_at_once_than_a_worker_takes_are_503(config, stored):
    app = create_served_app(long_lists(config, largest_entry=100, long_lists=1))
    first_chunk, release = asyncio.Event(), asyncio.Event()

    async def held(count, leave):
        first_chunk.set()
        await release.wait()

    async with falcon.testing.ASGIConductor(app) as conductor:
        slow = asyncio.create_task(get_whole(app, '/images', on_chunk=held))
        await first_chunk.wait()
        status, sent, content = await get_whole(app, '/images')
        page = await conductor.simulate_get('/images?limit=2')
        release.set()
        slow_status, _, slow_content = await slow
        again, _, _ = await get_whole(app, '/images')

    assert status == 503
    assert sent['retry-after'] == '5'
    error = json.loads(content)
    assert error['title'] == 'Too many whole lists'
    assert 'GET /images?limit=1000' in error['description']
    assert page.status_code == 200
    assert page.json == stored[:2]
    assert slow_status == 200
    assert json.loads(slow_content) == stored
    assert again == 200


async def test_a_long_list_let_go_twice_gives_back_one_place(config, stored):
    store = Store(long_lists(config, long_lists=2))
    await store.startup()
    try:
        first = await store.listing()
        await first.batches.close()
        await first.batches.close()
        second, third = await store.listing(), await store.listing()
        with pytest.raises(LongListsError):
            await store.listing()
        await second.batches.close()
        await third.batches.close()
    finally:
        await store.shut()


class _Cycle:
    """A request as uvicorn holds it: its receive is a method of its holder."""

    def __init__(self, query: bytes) -> None:
        self.scope = http_scope('GET', '/images', [], query=query)
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return body(b'')

    async def send(self, event: dict) -> None:
        self.sent.append(event)


@pytest.mark.parametrize('query', [b'', b'limit=2'])
async def test_a_list_answered_is_freed_at_once(config, stored, query):
    # Not left to the garbage collector, whose pauses were the list's 99th
    # percentile under load (13 ms, where 2 ms without).
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app):
        gc.disable()
        try:
            cycle = _Cycle(query)
            await app(cycle.scope, cycle.receive, cycle.send)
            status = cycle.sent[0]['status']
            answered = weakref.ref(cycle)
            del cycle
            assert answered() is None
        finally:
            gc.enable()
    assert status == 200


async def test_a_long_list_whose_client_reads_nothing_is_cut(
    config, storage_path, stored
):
    # Its snapshot held open kept SQLite from moving the WAL into the
    # database: it grew with every upload for as long as the client stayed.
    config.body_timeout = 0.2
    app = create_served_app(long_lists(config, batch=1, largest_entry=100))
    stalled = asyncio.Event()

    async def read_nothing_more(count, leave):
        if count == 2:
            await stalled.wait()

    async with falcon.testing.ASGIConductor(app):
        async with asyncio.timeout(10):
            status, _, content = await get_whole(
                app, '/images', on_chunk=read_nothing_more
            )
        whole = await get_whole(app, '/images')

    assert status == 200
    assert not content.endswith(b']')
    assert json.loads(whole[2]) == stored
    assert snapshots_closed(storage_path)
