"""/events on two real workers as Redis freezes and stops, a worker dies, all stop."""

import asyncio
import os
import signal
import time

import pytest

from . import servers
from .service import Service, eventually, only
from .subscribers import SSE, WS, StreamBroken, closing, delete, first_id, upload

pytestmark = pytest.mark.live


async def subscribers(service, workers, start):
    """One SSE and one WebSocket subscriber on each worker, after id start."""
    clients = []
    for worker in workers:
        stream = await SSE.open(service, worker, f'/events?after={start}')
        assert await first_id(stream) == start
        clients += [stream, await WS.open(service, worker, f'?after={start}')]
    return clients


async def test_events_flow_on_while_redis_is_frozen_then_stopped(tmp_path):
    port = servers.free_port()
    redis = servers.start_redis(tmp_path, port)
    running = Service(tmp_path / 'images', f'redis://127.0.0.1:{port}')
    try:
        a, b = await running.two_workers()
        async with asyncio.timeout(40):
            clients = await subscribers(running, (a, b), 0)
            async with closing(clients):
                made = [await upload(running, a)]
                os.kill(redis.pid, signal.SIGSTOP)
                try:
                    made.append(await upload(running, b))
                    got = [await client.events(until=2) for client in clients]
                finally:
                    os.kill(redis.pid, signal.SIGCONT)
                servers.stop(redis)
                assert redis.poll() is not None
                made += [await upload(running, b), await upload(running, a)]
                await delete(running, made[0], b)
                for client, events in zip(clients, got, strict=True):
                    events += await client.events(until=5)
    finally:
        servers.stop(running.process)
        servers.stop(redis)
    expected = [
        (serial, 'image.created', image) for serial, image in enumerate(made, 1)
    ]
    assert got == [[*expected, (5, 'image.deleted', made[0]['id'])]] * 4


async def test_a_killed_worker_clients_resume_and_the_others_keep_receiving(
    service,
):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        clients = await subscribers(service, (a, b), 0)
        killed, kept = clients[:2], clients[2:]
        first = await upload(service, b)
        for client in clients:
            assert await client.events(until=1) == [(1, 'image.created', first)]

        os.kill(a, signal.SIGKILL)
        with pytest.raises(StreamBroken):
            await killed[0].ending()
        assert await killed[1].close_code() == 1006
        await asyncio.gather(*(client.close() for client in killed))
        missed = [await upload(service), await upload(service)]
        # uvicorn starts a worker in its place.
        await eventually(lambda: len(w := service.workers()) == 2 and a not in w)
        kept += [
            await SSE.open(service, None, headers={'Last-Event-ID': '1'}),
            await WS.open(service, None, '?after=1'),
        ]
        assert await first_id(kept[2]) == 1
        newest = await upload(service)
        async with closing(kept):
            got = [await client.events(until=4) for client in kept]
    expected = [
        (2, 'image.created', missed[0]),
        (3, 'image.created', missed[1]),
        (4, 'image.created', newest),
    ]
    assert got == [expected] * 4


async def test_a_stopped_service_ends_hundreds_of_streams_within_seconds(service):
    workers = await service.two_workers()
    async with asyncio.timeout(50):
        streams, sockets = [], []
        for worker in workers:
            async with only(service, worker):
                opened = [SSE.open(service, path='/events') for _ in range(150)]
                streams += await asyncio.gather(*opened)
                sockets += await asyncio.gather(
                    *(WS.open(service, query='?after=0') for _ in range(25))
                )
        assert {await first_id(stream) for stream in streams} == {0}
        held = await eventually(lambda: len(h := service.holders()) == 350 and h)
        assert sorted(held[client.port] for client in streams + sockets) == sorted(
            [workers[0]] * 175 + [workers[1]] * 175
        )
        everyone = [service.process.pid, *servers.descendants(service.process.pid)]

        async with closing(streams + sockets):
            stopped = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            endings = await asyncio.gather(*(stream.ending() for stream in streams))
            codes = await asyncio.gather(*(ws.close_code() for ws in sockets))
            await eventually(lambda: not any(map(servers.alive, everyone)))
            took = time.monotonic() - stopped
    assert took < 10
    assert all(ending == ['end: the server is going away'] for ending in endings)
    assert set(codes) <= {1001, 1012}
