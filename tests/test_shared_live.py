"""Two hosts of `python -m asgilook` over real PostgreSQL, SeaweedFS and Redis."""

import asyncio
import contextlib
import signal

import httpx
import pytest

from . import servers
from .fakes import owner
from .images import encode, gradient

WAIT = 10.0


@pytest.fixture
def two_hosts(tmp_path, live_redis, database_url, storage_url, s3_environ):
    """Two hosts (one worker each) sharing the database, the bucket and Redis."""
    env = {
        'ASGI_LOOK_DATABASE_URL': database_url,
        'ASGI_LOOK_STORAGE_URL': storage_url,
        **s3_environ,
    }
    with contextlib.ExitStack() as stack:
        urls = []
        for number in range(2):
            port = servers.free_port()
            process = servers.start_launcher(
                tmp_path / f'host-{number}', live_redis, port, env=env
            )
            stack.callback(_stopped, process)
            urls.append(f'http://127.0.0.1:{port}')
        yield urls


def _png(number):
    return encode(gradient((64 + number, 48)), 'PNG')


def _stopped(process):
    """Stop a host, and read what it logged (its stderr is a pipe)."""
    servers.stop(process)
    process.communicate()


class Events:
    """An SSE subscriber of one host: its events as (id, name, data)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, str, str]:
        fields = {}
        async with asyncio.timeout(WAIT):
            async for line in self._lines:
                if not line:
                    if 'event' in fields:
                        return fields['id'], fields['event'], fields['data']
                    fields = {}
                    continue
                name, _, value = line.partition(': ')
                fields[name] = value
        raise AssertionError('the stream ended')


@contextlib.asynccontextmanager
async def subscribed(client, url, last_event_id=None):
    headers = {} if last_event_id is None else {'Last-Event-ID': last_event_id}
    async with client.stream('GET', f'{url}/events', headers=headers) as response:
        assert response.status_code == 200
        yield Events(response)


async def test_two_hosts_are_one_service(two_hosts):
    first, second = two_hosts
    picture = encode(gradient((320, 200)), 'PNG')
    async with httpx.AsyncClient(timeout=WAIT) as client:
        async with subscribed(client, second) as events:
            uploaded = await client.post(f'{first}/images', content=picture)
            image = uploaded.json()
            created = await events.next()

            listed = await client.get(f'{second}/images')
            here = await client.get(f'{first}{image["image"]}')
            there = await client.get(f'{second}{image["image"]}')
            thumbnail = await client.get(f'{second}{image["thumbnails"][-1]}')
            deleted = await client.delete(
                f'{second}{image["image"]}', headers=owner(image)
            )
            told = await events.next()
        gone = await client.get(f'{first}{image["image"]}')
        # Resumed on the other host from the same id: the same next event.
        async with subscribed(client, first, created[0]) as resumed:
            again = await resumed.next()

    assert uploaded.status_code == 201
    assert created[1] == 'image.created'
    assert image['id'] in created[2]
    assert [item['id'] for item in listed.json()] == [image['id']]
    assert there.content == here.content
    assert there.headers['etag'] == here.headers['etag']
    assert thumbnail.status_code == 200
    assert deleted.status_code == 204
    assert told[1] == 'image.deleted'
    assert int(told[0]) > int(created[0])
    assert gone.status_code == 404
    assert again == told


async def test_a_host_killed_amid_uploads_and_deletes_loses_nothing_acknowledged(
    tmp_path, live_redis, database_url, storage_url, s3_environ
):
    env = {
        'ASGI_LOOK_DATABASE_URL': database_url,
        'ASGI_LOOK_STORAGE_URL': storage_url,
        **s3_environ,
    }
    ports = [servers.free_port(), servers.free_port()]
    doomed = servers.start_launcher(tmp_path / 'doomed', live_redis, ports[0], env=env)
    survivor = servers.start_launcher(tmp_path / 'kept', live_redis, ports[1], env=env)
    first, second = (f'http://127.0.0.1:{port}' for port in ports)
    acknowledged, unanswered, deleted, uncertain = set(), 0, set(), set()
    try:
        async with httpx.AsyncClient(timeout=WAIT) as client:
            # Some images to delete while the host dies.
            for number in range(6):
                resp = await client.post(f'{first}/images', content=_png(number))
                acknowledged.add((resp.json()['id'], resp.json()['delete_token']))

            async def upload(number):
                nonlocal unanswered
                try:
                    resp = await client.post(f'{first}/images', content=_png(number))
                except httpx.HTTPError:
                    unanswered += 1
                    return
                if resp.status_code == 201:
                    acknowledged.add((resp.json()['id'], resp.json()['delete_token']))

            async def delete(image_id, token):
                try:
                    resp = await client.delete(
                        f'{first}/images/{image_id}.jpeg',
                        headers={'Authorization': f'Bearer {token}'},
                    )
                except httpx.HTTPError:
                    # Cut by the kill: deleted, or not.
                    uncertain.add(image_id)
                    return
                if resp.status_code == 204:
                    deleted.add(image_id)

            work = [asyncio.create_task(upload(number)) for number in range(40)]
            work += [
                asyncio.create_task(delete(image_id, token))
                for image_id, token in list(acknowledged)[:6]
            ]
            await asyncio.sleep(0.3)
            servers.stop(doomed, signal.SIGKILL)
            await asyncio.gather(*work)

            listed = (await client.get(f'{second}/images')).json()
            fetched = [
                (await client.get(f'{second}{item["image"]}')).status_code
                for item in listed
            ]
    finally:
        doomed.communicate()
        _stopped(survivor)

    listed_ids = {item['id'] for item in listed}
    kept = {image_id for image_id, _ in acknowledged} - deleted - uncertain
    # Every acknowledged upload that was not deleted is there, and can be read.
    assert kept <= listed_ids
    assert fetched == [200] * len(listed)
    assert not listed_ids & deleted
    # Nothing else, but uploads and deletes whose answer the kill cut.
    assert len(listed_ids - kept) <= unanswered + len(uncertain)
