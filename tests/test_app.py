"""create_app() is the tutorial's: the Falcon app, wired, which one may extend."""

import falcon
import falcon.asgi
import falcon.testing

from asgilook.app import create_app, create_served_app


class _Hello:
    async def on_get(self, req, resp):
        resp.media = {'hello': 'world'}


class _Seen:
    def __init__(self):
        self.paths = []

    async def process_request(self, req, resp):
        self.paths.append(req.path)


def test_create_app_returns_the_falcon_app(config):
    assert isinstance(create_app(config), falcon.asgi.App)


def test_routes_and_middleware_are_added_as_in_the_tutorial(config, png_image):
    app = create_app(config)
    app.add_route('/hello', _Hello())
    seen = _Seen()
    app.add_middleware(seen)

    client = falcon.testing.TestClient(app)
    hello = client.simulate_get('/hello')
    uploaded = client.simulate_post(
        '/images', body=png_image, headers={'content-type': 'image/png'}
    )
    listed = client.simulate_get('/images')

    assert hello.json == {'hello': 'world'}
    assert uploaded.status_code == 201
    assert [image['id'] for image in listed.json] == [uploaded.json['id']]
    assert seen.paths == ['/hello', '/images', '/images']


def test_the_served_app_is_the_falcon_app_behind_the_gate(config):
    served = create_served_app(config)

    moved = falcon.testing.TestClient(served).simulate_get('//images')

    assert isinstance(served.app, falcon.asgi.App)
    # What comes before Falcon: one URL for each path.
    assert moved.status_code == 308
    assert moved.headers['location'] == '/images'
