"""End to end: /events over two real uvicorn workers and a real redis-server."""

import asyncio
import json

import httpx
import pytest

from .service import WAIT
from .subscribers import SSE, WS, closing, delete, first_id, upload

pytestmark = pytest.mark.live


async def test_every_subscriber_on_either_worker_gets_every_event(service):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        sse = [await SSE.open(service, worker) for worker in (a, b, a, b)]
        start = await first_id(sse[0])
        assert [await first_id(stream) for stream in sse[1:]] == [start] * 3
        ws = [await WS.open(service, w, f'?after={start}') for w in (a, b, a, b)]
        assert sse[0].headers['content-type'] == 'text/event-stream'
        assert sse[0].headers['cache-control'] == 'no-store'
        held = service.holders()
        assert [held[client.port] for client in sse + ws] == [a, b] * 4

        async with closing(sse + ws):
            images = [await upload(service, worker) for worker in (a, b, a, b)]
            async with httpx.AsyncClient(base_url=service.url, timeout=WAIT) as http:
                listed = {
                    image['id']: image for image in (await http.get('/images')).json()
                }
            await delete(service, images[0], b)
            await delete(service, images[3], a)
            expected = [('image.created', listed[image['id']]) for image in images]
            expected += [('image.deleted', images[0]['id'])]
            expected += [('image.deleted', images[3]['id'])]

            got = await asyncio.gather(
                *(client.events(until=start + 6) for client in sse + ws)
            )
    assert all(events == got[0] for events in got)
    assert [event[0] for event in got[0]] == list(range(start + 1, start + 7))
    assert [event[1:] for event in got[0]] == expected
    assert listed == {image['id']: image for image in images}


async def test_a_client_resumes_on_either_worker_with_exactly_what_it_missed(service):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        stream = await SSE.open(service, a)
        start = await first_id(stream)
        socket_ = await WS.open(service, a, f'?after={start}')
        kept = await upload(service, a)
        seen = await stream.events(until=start + 1)
        assert await socket_.events(until=start + 1) == seen
        await stream.close()
        await socket_.close()

        # Missed: made through both workers while no one listened.
        missed = [await upload(service, b), await upload(service, a)]
        await delete(service, kept, b)
        last = start + 4
        # The header wins over the URL's after; each resumes on the other worker.
        resumed = await SSE.open(
            service, b, f'/events?after={start}', {'Last-Event-ID': str(start + 1)}
        )
        assert await first_id(resumed) == start + 1
        resumed_ws = await WS.open(service, b, f'?after={start + 1}')
        by_message = await WS.open(service, a)
        await by_message.ws.send(json.dumps({'after': start + 1}))
        newest = await upload(service, b)
        async with closing([resumed, resumed_ws, by_message]):
            got = [
                await client.events(until=last + 1)
                for client in (resumed, resumed_ws, by_message)
            ]
    expected = [
        (start + 2, 'image.created', missed[0]),
        (start + 3, 'image.created', missed[1]),
        (start + 4, 'image.deleted', kept['id']),
        (start + 5, 'image.created', newest),
    ]
    assert seen == [(start + 1, 'image.created', kept)]
    assert got == [expected] * 3


async def test_a_garbage_id_is_refused_and_one_not_yet_given_is_reset(service):
    async with httpx.AsyncClient(base_url=service.url, timeout=WAIT) as http:
        refused = await http.get('/events', headers={'Last-Event-ID': '12abc'})
    assert refused.status_code == 400
    assert refused.headers['Content-Type'] == 'application/json'
    assert refused.json()['title'] == 'Invalid event id'

    async with asyncio.timeout(30):
        image = await upload(service)
        ahead = await SSE.open(service, headers={'Last-Event-ID': '1000'})
        last = await first_id(ahead)
        socket_ = await WS.open(service, query='?after=1000')
        async with closing([ahead, socket_]):
            reset = await ahead.events(until=last)
            assert await socket_.events(until=last) == reset
            newest = await upload(service)
            assert await ahead.events(until=last + 1) == [
                (last + 1, 'image.created', newest)
            ]
            assert await socket_.events(until=last + 1) == [
                (last + 1, 'image.created', newest)
            ]
    assert last == 1
    assert image['id'] != newest['id']
    [(serial, name, data)] = reset
    assert (serial, name) == (1, 'reset')
    assert (data['requested'], data['last']) == (1000, 1)
    assert 'GET /images' in data['description']
