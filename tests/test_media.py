"""Media types: JSON, or MessagePack when asked; never one for the other."""

import json

import fakeredis
import falcon.testing
import msgpack
import pytest

from asgilook.app import create_served_app

from .fakes import make_config, two_workers, upload_through
from .images import encode, gradient
from .paging import SMALL, next_page, upload_many
from .test_cache_fastpath import _scope, _send_to

JSON = 'application/json'
MSGPACK = 'application/msgpack'
ASK_MSGPACK = {'Accept': MSGPACK}


def decoded(resp):
    """The body as its Content-Type says it is encoded (failing if it is not)."""
    content_type = resp.headers['Content-Type']
    if content_type == MSGPACK:
        return msgpack.unpackb(resp.content, raw=False)
    assert content_type == JSON
    return json.loads(resp.content)


async def test_the_list_round_trips_as_messagepack(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_many(conductor, 2)
        as_json = await conductor.simulate_get('/images')
        as_msgpack = await conductor.simulate_get('/images', headers=ASK_MSGPACK)

    assert as_msgpack.status_code == 200
    assert as_msgpack.headers['Content-Type'] == MSGPACK
    assert msgpack.unpackb(as_msgpack.content, raw=False) == as_json.json
    assert len(as_json.json) == 2
    assert as_json.headers['Vary'] == as_msgpack.headers['Vary'] == 'Accept'
    assert as_json.headers['ETag'] != as_msgpack.headers['ETag']


async def test_a_page_round_trips_as_messagepack_with_its_link(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_many(conductor, 3)
        as_json = await conductor.simulate_get('/images?limit=2')
        as_msgpack = await conductor.simulate_get(
            '/images?limit=2', headers=ASK_MSGPACK
        )
        last = await conductor.simulate_get(next_page(as_msgpack), headers=ASK_MSGPACK)

    assert as_msgpack.headers['Content-Type'] == MSGPACK
    assert msgpack.unpackb(as_msgpack.content, raw=False) == as_json.json
    assert next_page(as_msgpack) == next_page(as_json) is not None
    assert len(decoded(last)) == 1
    assert as_msgpack.headers['Vary'] == 'Accept'
    assert as_json.headers['ETag'] != as_msgpack.headers['ETag']


async def test_the_upload_answer_round_trips_as_messagepack(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        created = await conductor.simulate_post(
            '/images', body=encode(gradient(SMALL), 'PNG'), headers=ASK_MSGPACK
        )
        listed = (await conductor.simulate_get('/images')).json

    assert created.status_code == 201
    assert created.headers['Content-Type'] == MSGPACK
    assert created.headers['Vary'] == 'Accept'
    answer = msgpack.unpackb(created.content, raw=False)
    assert answer['image'] == created.headers['Location']
    # The token of the uploader is in the 201 only.
    answer.pop('delete_token', None)
    assert [answer] == listed


# What a client gets for its Accept header: JSON unless it prefers MessagePack.
PREFERENCES = [
    (None, JSON),
    ('*/*', JSON),
    (JSON, JSON),
    ('text/html', JSON),
    ('application/*', JSON),
    ('application/msgpack;q=0.5, application/json', JSON),
    ('image/jpeg;;q=x', JSON),
    (MSGPACK, MSGPACK),
    ('application/json;q=0.5, application/msgpack', MSGPACK),
    ('application/*, application/json;q=0.5', MSGPACK),
    ('text/html, */*;q=0.1, application/json;q=0', MSGPACK),
]


@pytest.mark.parametrize(('accept', 'expected'), PREFERENCES)
async def test_each_accept_gets_its_type_computed_and_kept(config, accept, expected):
    headers = {} if accept is None else {'Accept': accept}
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_through(conductor, SMALL)
        computed = await conductor.simulate_get('/images', headers=headers)
        # Both representations kept: the one sent again is the one negotiated.
        for other in (JSON, MSGPACK):
            await conductor.simulate_get('/images', headers={'Accept': other})
        kept = await conductor.simulate_get('/images', headers=headers)

    assert computed.headers['X-ASGILook-Cache'] == 'Miss'
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    for resp in (computed, kept):
        assert resp.headers['Content-Type'] == expected
        assert resp.headers['Vary'] == 'Accept'
    assert kept.content == computed.content
    assert len(decoded(kept)) == 1


async def test_the_fast_path_reads_accept_as_falcon_does(config):
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        await upload_through(conductor, SMALL)
        as_json = await conductor.simulate_get('/images')
        as_msgpack = await conductor.simulate_get('/images', headers=ASK_MSGPACK)
        for resp in (as_json, as_msgpack):
            assert resp.headers['X-ASGILook-Cache'] == 'Miss'
        # Sent more than once, the header's values count together.
        twice = [(b'accept', b'application/json;q=0.5'), (b'accept', MSGPACK.encode())]
        sent = [
            await _send_to(app, _scope('/images', headers))
            for headers in ([], [(b'accept', b'*/*')], twice, [(b'accept', b'')])
        ]

    assert [headers[b'x-asgilook-cache'] for _, headers, _ in sent] == [b'Hit'] * 4
    assert [body for _, _, body in sent] == [
        as_json.content,
        as_json.content,
        as_msgpack.content,
        as_json.content,
    ]
    assert sent[2][1][b'content-type'] == MSGPACK.encode()
    assert sent[2][1][b'vary'] == b'Accept'


@pytest.mark.parametrize('uri', ['/images', '/images?limit=1'])
async def test_alternate_requests_each_get_their_own_bytes(config, uri):
    accepts = [JSON, MSGPACK, JSON, MSGPACK, None, MSGPACK]
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_many(conductor, 2)
        answers = [
            await conductor.simulate_get(
                uri, headers={} if accept is None else {'Accept': accept}
            )
            for accept in accepts
        ]

    states = [resp.headers['X-ASGILook-Cache'] for resp in answers]
    assert states == ['Miss', 'Miss', 'Hit', 'Hit', 'Hit', 'Hit']
    types = [resp.headers['Content-Type'] for resp in answers]
    assert types == [JSON, MSGPACK, JSON, MSGPACK, JSON, MSGPACK]
    bodies = [decoded(resp) for resp in answers]
    assert all(body == bodies[0] for body in bodies)


async def test_two_workers_never_hand_each_other_the_other_type(
    storage_path, redis_server
):
    async with two_workers(storage_path, redis_server) as (first, second):
        await upload_many(first, 2)
        stored = await first.simulate_get('/images?limit=1', headers=ASK_MSGPACK)
        as_json = await second.simulate_get('/images?limit=1')
        from_redis = await second.simulate_get('/images?limit=1', headers=ASK_MSGPACK)
        json_from_redis = await first.simulate_get('/images?limit=1')

    assert stored.headers['X-ASGILook-Cache'] == 'Miss'
    assert as_json.headers['X-ASGILook-Cache'] == 'Miss'
    assert as_json.headers['Content-Type'] == JSON
    assert from_redis.headers['X-ASGILook-Cache'] == 'Hit'
    assert from_redis.headers['Content-Type'] == MSGPACK
    assert from_redis.content == stored.content
    assert from_redis.headers['ETag'] == stored.headers['ETag']
    assert json_from_redis.headers['X-ASGILook-Cache'] == 'Hit'
    assert json_from_redis.content == as_json.content
    assert decoded(from_redis) == decoded(as_json)


async def test_redis_keeps_each_type_under_its_key_and_a_change_drops_both(
    config, redis_server
):
    redis = fakeredis.FakeRedis(server=redis_server)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_through(conductor, SMALL)
        await conductor.simulate_get('/images')
        await conductor.simulate_get('/images', headers=ASK_MSGPACK)
        kept = sorted(redis.keys('*/images*'))
        await upload_through(conductor, SMALL)
        after = sorted(redis.keys('*/images*'))

    assert kept == [b'asgilook:/images', b'asgilook:application/msgpack /images']
    assert after == []


@pytest.mark.parametrize('kept', [True, False])
async def test_another_types_etag_is_no_match(config, storage_path, kept):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as first:
        await upload_through(first, SMALL)
        json_tag = (await first.simulate_get('/images')).headers['ETag']
        msgpack_resp = await first.simulate_get('/images', headers=ASK_MSGPACK)
        msgpack_tag = msgpack_resp.headers['ETag']
    # Another worker with a Redis of its own: its answers are computed now.
    app = create_served_app(config if kept else make_config(storage_path))
    async with falcon.testing.ASGIConductor(app) as conductor:
        other = await conductor.simulate_get(
            '/images', headers={**ASK_MSGPACK, 'If-None-Match': json_tag}
        )
        same = await conductor.simulate_get(
            '/images', headers={**ASK_MSGPACK, 'If-None-Match': msgpack_tag}
        )
        json_same = await conductor.simulate_get(
            '/images', headers={'If-None-Match': json_tag}
        )

    expected = 'Hit' if kept else 'Miss'
    assert other.headers['X-ASGILook-Cache'] == expected
    assert other.status_code == 200
    assert other.content == msgpack_resp.content
    assert other.headers['Content-Type'] == MSGPACK
    assert (same.status_code, json_same.status_code) == (304, 304)
    assert same.headers['ETag'] == msgpack_tag
    assert same.headers['Vary'] == json_same.headers['Vary'] == 'Accept'


@pytest.mark.parametrize(
    ('method', 'uri', 'status'),
    [
        ('GET', '/images?limit=0', 400),
        ('GET', '/images?after=x', 400),
        ('POST', '/images', 400),
        ('GET', '/nowhere', 404),
    ],
)
def test_errors_stay_json_when_messagepack_is_asked(client, method, uri, status):
    resp = client.simulate_request(method, uri, headers=ASK_MSGPACK)

    assert resp.status_code == status
    assert resp.headers['Content-Type'] == JSON
    assert set(resp.json) == {'title', 'description'}


@pytest.mark.parametrize('which', ['thumbnail', 'image'])
async def test_a_jpeg_is_one_answer_kept_once_whatever_the_client_accepts(
    config, redis_server, which
):
    redis = fakeredis.FakeRedis(server=redis_server)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        uri = image['thumbnails'][0] if which == 'thumbnail' else image['image']
        answers = [
            await conductor.simulate_get(uri, headers=headers)
            for headers in (ASK_MSGPACK, {}, ASK_MSGPACK, {'Accept': '*/*'})
        ]
        kept = redis.keys(f'*{uri}')

    assert [resp.headers['Content-Type'] for resp in answers] == ['image/jpeg'] * 4
    assert all(resp.content == answers[0].content for resp in answers)
    assert 'Vary' not in answers[0].headers
    # Computed once, for whichever client asked first.
    assert [resp.headers['X-ASGILook-Cache'] for resp in answers] == [
        'Miss',
        'Hit',
        'Hit',
        'Hit',
    ]
    assert kept == [f'asgilook:{uri}'.encode()]
