"""The fast path: what memory keeps, sent before Falcon routes, the scope untouched."""

import copy

import fakeredis
import falcon
import falcon.asgi
import falcon.testing

from asgilook.app import create_served_app
from asgilook.cache import RedisCache

from .asgi import http_scope
from .fakes import upload_through


def _scope(path, headers, method='GET', query=b''):
    return http_scope(method, path, headers, query=query)


async def _send_to(app, scope):
    """Call the ASGI app as a server does; return the status, headers and body."""
    events = [{'type': 'http.request', 'body': b'', 'more_body': False}]
    sent = []

    async def receive():
        return events.pop(0) if events else {'type': 'http.disconnect'}

    async def send(event):
        sent.append(event)

    await app(scope, receive, send)
    headers = dict(sent[0]['headers'])
    body = b''.join(event.get('body', b'') for event in sent[1:])
    return sent[0]['status'], headers, body


async def test_a_kept_answer_leaves_the_scope_as_the_server_gave_it(config):
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        image = await upload_through(conductor)
        uri = image['thumbnails'][0]
        miss = await conductor.simulate_get(uri)
        plain = _scope(uri, [(b'host', b'localhost'), (b'accept', b'image/jpeg')])
        etag = miss.headers['ETag'].encode()
        conditional = _scope(uri, [(b'host', b'localhost'), (b'if-none-match', etag)])
        head = _scope(uri, [(b'host', b'localhost')], method='HEAD')
        given = [copy.deepcopy(scope) for scope in (plain, conditional, head)]

        hit = await _send_to(app, plain)
        not_modified = await _send_to(app, conditional)
        headed = await _send_to(app, head)

    assert [plain, conditional, head] == given
    assert hit[0] == 200
    assert hit[1][b'x-asgilook-cache'] == b'Hit'
    assert hit[2] == miss.content
    assert int(hit[1][b'content-length']) == len(miss.content)
    assert hit[1][b'etag'] == etag
    assert (not_modified[0], not_modified[2]) == (304, b'')
    assert not_modified[1][b'x-asgilook-cache'] == b'Hit'
    assert (headed[0], headed[2]) == (200, b'')
    assert headed[1] == hit[1]


async def test_a_query_that_is_not_ascii_is_left_to_the_app(config):
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        await conductor.simulate_get('/images')
        kept = await conductor.simulate_get('/images')
        status, headers, _ = await _send_to(
            app, _scope('/images', [], query='limit=é'.encode())
        )

    # The list's own answer to a limit that is no number, not the kept list.
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    assert status == 400
    assert headers[b'content-type'] == b'application/json'


class _Hello:
    async def on_get(self, req, resp):
        resp.media = {'hello': 'world'}

    async def cache_version(self, req):
        return 'hello-1'


def test_without_a_token_nothing_is_kept_in_memory(config, redis_server):
    # A catalog that cannot say its token (None): every Hit comes from Redis.
    hello = _Hello()
    versions = {'/hello': hello.cache_version}
    app = falcon.asgi.App(
        middleware=[RedisCache(config, token=lambda: None, versions=versions)]
    )
    app.add_route('/hello', hello)
    client = falcon.testing.TestClient(app)

    states = [client.simulate_get('/hello').headers['X-ASGILook-Cache'] for _ in '12']
    fakeredis.FakeRedis(server=redis_server).flushall()
    after = client.simulate_get('/hello')

    assert states == ['Miss', 'Hit']
    assert after.headers['X-ASGILook-Cache'] == 'Miss'
    assert after.json == {'hello': 'world'}
