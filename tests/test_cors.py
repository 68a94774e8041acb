"""CORS: the origins of ASGI_LOOK_CORS_ORIGINS may call the API from a browser."""

import asyncio
import json

import falcon.testing
import pytest
from falcon.errors import WebSocketDisconnected

from asgilook.app import create_served_app
from asgilook.config import Config
from asgilook.errors import ConfigError

from .fakes import as_listed, owner
from .images import encode, gradient
from .streams import WAIT, uploads

ALLOWED = 'https://app.example.com'
OTHER = 'https://evil.example.net'
EXPOSED = 'Location, Link, ETag'


@pytest.fixture
def cors_client(config):
    config.cors_origins = Config(
        {'ASGI_LOOK_CORS_ORIGINS': f'{ALLOWED}, http://localhost:3000'}
    ).cors_origins
    return falcon.testing.TestClient(create_served_app(config))


def upload(client, origin=ALLOWED):
    return client.simulate_post(
        '/images', body=encode(gradient(), 'PNG'), headers={'Origin': origin}
    )


def test_off_by_default_no_origin_is_allowed(client):
    resp = client.simulate_get('/images', headers={'Origin': ALLOWED})
    preflight = client.simulate_options(
        '/images', headers={'Origin': ALLOWED, 'Access-Control-Request-Method': 'POST'}
    )

    assert 'Access-Control-Allow-Origin' not in resp.headers
    assert 'Access-Control-Allow-Origin' not in preflight.headers
    assert 'Access-Control-Allow-Methods' not in preflight.headers


def test_an_allowed_origin_may_upload_and_read_where_it_went(cors_client):
    resp = upload(cors_client)

    assert resp.status_code == 201
    assert resp.headers['Access-Control-Allow-Origin'] == ALLOWED
    assert resp.headers['Access-Control-Expose-Headers'] == EXPOSED
    assert 'Origin' in resp.headers['Vary']


def test_another_origin_gets_no_allowance(cors_client):
    resp = upload(cors_client, OTHER)
    listing = cors_client.simulate_get('/images', headers={'Origin': OTHER})

    for answer in (resp, listing):
        assert 'Access-Control-Allow-Origin' not in answer.headers
        assert 'Access-Control-Expose-Headers' not in answer.headers
    assert listing.headers['Vary'] == 'Accept, Origin'


def test_a_preflight_of_a_delete_allows_its_authorization(cors_client):
    image = as_listed(upload(cors_client).json)
    preflight = cors_client.simulate_options(
        image['image'],
        headers={
            'Origin': ALLOWED,
            'Access-Control-Request-Method': 'DELETE',
            'Access-Control-Request-Headers': 'authorization',
        },
    )
    refused = cors_client.simulate_options(
        image['image'],
        headers={'Origin': OTHER, 'Access-Control-Request-Method': 'DELETE'},
    )
    deleted = cors_client.simulate_delete(
        image['image'], headers={'Origin': ALLOWED, **owner(image)}
    )

    assert preflight.status_code == 200
    assert preflight.headers['Access-Control-Allow-Origin'] == ALLOWED
    assert 'DELETE' in preflight.headers['Access-Control-Allow-Methods']
    assert preflight.headers['Access-Control-Allow-Headers'] == 'authorization'
    assert 'Access-Control-Allow-Origin' not in refused.headers
    assert 'Access-Control-Allow-Methods' not in refused.headers
    assert deleted.status_code == 204
    assert deleted.headers['Access-Control-Allow-Origin'] == ALLOWED


def test_an_error_is_readable_by_an_allowed_origin(cors_client):
    resp = cors_client.simulate_post(
        '/images', body=b'not an image', headers={'Origin': ALLOWED}
    )

    assert resp.status_code == 415
    assert resp.headers['Access-Control-Allow-Origin'] == ALLOWED


@pytest.mark.parametrize('kind', ['list', 'image', 'thumbnail'])
def test_cached_answers_carry_the_headers_of_the_asking_origin(cors_client, kind):
    image = as_listed(upload(cors_client).json)
    uri = {
        'list': '/images',
        'image': image['image'],
        'thumbnail': image['thumbnails'][0],
    }[kind]
    # Computed for one origin; then sent from memory to each in turn.
    order = [ALLOWED, OTHER, None, 'http://localhost:3000', OTHER, ALLOWED]
    answers = [
        cors_client.simulate_get(
            uri, headers={} if origin is None else {'Origin': origin}
        )
        for origin in order
    ]

    assert answers[0].headers['X-ASGILook-Cache'] == 'Miss'
    assert {resp.headers['X-ASGILook-Cache'] for resp in answers[1:]} == {'Hit'}
    assert [resp.headers.get('Access-Control-Allow-Origin') for resp in answers] == [
        ALLOWED,
        None,
        None,
        'http://localhost:3000',
        None,
        ALLOWED,
    ]
    for origin, resp in zip(order, answers, strict=True):
        exposed = None if origin in (None, OTHER) else EXPOSED
        assert resp.headers.get('Access-Control-Expose-Headers') == exposed
        assert [name.strip() for name in resp.headers['Vary'].split(',')].count(
            'Origin'
        ) == 1
    assert len({resp.content for resp in answers}) == 1


def test_an_answer_from_redis_carries_the_headers_of_the_asking_origin(config):
    config.cors_origins = frozenset({ALLOWED})
    first = falcon.testing.TestClient(create_served_app(config))
    thumbnail = as_listed(upload(first).json)['thumbnails'][0]
    first.simulate_get(thumbnail, headers={'Origin': ALLOWED})
    # Another worker: not in its memory; kept in Redis by the first.
    second = falcon.testing.TestClient(create_served_app(config))
    other = second.simulate_get(thumbnail, headers={'Origin': OTHER})
    allowed = second.simulate_get(thumbnail, headers={'Origin': ALLOWED})

    assert other.headers['X-ASGILook-Cache'] == 'Hit'
    assert 'Access-Control-Allow-Origin' not in other.headers
    assert other.headers['Vary'] == 'Origin'
    assert allowed.headers['Access-Control-Allow-Origin'] == ALLOWED


@pytest.mark.parametrize(
    ('setting', 'origins'),
    [
        ('', set()),
        ('https://App.Example.com', {'https://app.example.com'}),
        (
            'https://a.example:443, http://b.example:80',
            {'https://a.example', 'http://b.example'},
        ),
        ('http://localhost:3000,,', {'http://localhost:3000'}),
        ('http://[::1]:8080', {'http://[::1]:8080'}),
    ],
)
def test_origins_are_read_as_browsers_send_them(setting, origins):
    assert Config({'ASGI_LOOK_CORS_ORIGINS': setting}).cors_origins == origins


@pytest.mark.parametrize(
    'bad',
    [
        '*',
        'null',
        'app.example.com',
        'ftp://app.example.com',
        'https://app.example.com/',
        'https://app.example.com/path',
        'https://app.example.com?',
        'https://app.example.com#top',
        'https://user@app.example.com',
        'https://app.example.com:99999',
        'https://bücher.example',
    ],
)
def test_a_bad_origin_stops_the_start_naming_the_setting(bad):
    with pytest.raises(ConfigError) as raised:
        Config({'ASGI_LOOK_CORS_ORIGINS': f'https://ok.example, {bad}'})

    message = str(raised.value)
    assert message.startswith('ASGI_LOOK_CORS_ORIGINS must be origins')
    assert repr(bad) in message


async def test_a_page_of_an_allowed_origin_may_open_the_event_socket(events_config):
    events_config.cors_origins = frozenset({ALLOWED})
    app = create_served_app(events_config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        with pytest.raises(WebSocketDisconnected) as refused:
            async with conductor.simulate_ws(
                '/events', headers={'Origin': OTHER}, spec_version='2.4'
            ):
                pass
        async with conductor.simulate_ws(
            '/events', headers={'Origin': ALLOWED}, spec_version='2.4'
        ) as ws:
            images = await uploads(conductor, 1)
            async with asyncio.timeout(WAIT):
                message = json.loads(await ws.receive_text())

    assert refused.value.code == 3403
    assert message['data'] == images[0]
