"""What is refused before Falcon takes a request, and what is let through."""

import logging

import falcon
import falcon.asgi
import falcon.testing
import pytest
from falcon.asgi_spec import WSCloseCode

from asgilook.app import create_served_app

from .asgi import body, call


def _get(app, path='/images', query=b'', http_version='1.1'):
    return falcon.async_to_sync(
        call, app, 'GET', path, [body(b'')], (), http_version, query
    )


@pytest.mark.parametrize('http_version', ['0.9', '4'])
def test_an_http_version_falcon_does_not_speak_is_a_505(config, http_version):
    status, headers, error, pulled = _get(
        create_served_app(config), http_version=http_version
    )

    assert status == 505
    assert headers['content-type'] == 'application/json'
    assert int(headers['content-length']) > 0
    assert error['title'] == 'HTTP version not supported'
    assert pulled == 0


@pytest.mark.parametrize(
    'query',
    [
        b'limit=\xff',
        b'after=\xc3',
        b'%ff',
        b'limit=%C3',
        b'limit=%c3%28',
        # Raw UTF-8, and an escape that is not.
        'é=%ff'.encode(),
    ],
)
def test_a_query_string_that_is_not_utf8_is_a_400(config, query):
    status, headers, error, _ = _get(create_served_app(config), query=query)

    assert status == 400
    assert headers['content-type'] == 'application/json'
    assert error['title'] == 'Invalid query string'
    assert 'Percent-encode' in error['description']


@pytest.mark.parametrize('query', ['limit=é'.encode(), b'limit=%C3%A9'])
def test_a_utf8_query_string_reaches_the_app(config, query):
    status, headers, error, _ = _get(create_served_app(config), query=query)

    # The list's own answer to a limit that is no number.
    assert (status, error['title']) == (400, 'Invalid page size')
    assert headers['x-asgilook-cache'] == 'Miss'


def test_the_falcon_app_is_at_the_centre(config):
    app = create_served_app(config)

    assert isinstance(app.app, falcon.asgi.App)


@pytest.mark.parametrize(
    'path', ['/images', '/', '/nowhere', '/gallery/gallery.css', '//images']
)
async def test_a_websocket_where_asgilook_takes_none_is_refused_unlogged(
    config, caplog, path
):
    # Falcon logs an ERROR for each: one client could fill the log with them.
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        with pytest.raises(falcon.errors.WebSocketDisconnected) as refused:
            async with conductor.simulate_ws(path):
                pass

    assert refused.value.code == WSCloseCode.PATH_NOT_FOUND
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == []
