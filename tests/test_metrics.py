"""GET /metrics: answers, cache lookups, renders, uploads, in Prometheus' format."""

import uuid

import falcon.testing
import pytest
from prometheus_client import generate_latest

from asgilook.app import IMAGE, IMAGES, THUMBNAIL, create_app, create_served_app
from asgilook.config import Config
from asgilook.metrics.tallies import Tallies, families

from .fakes import FakeClock, as_listed
from .images import encode, gradient
from .scrape import label_values, value
from .streams import SSEReader

REQUESTS = 'asgilook_http_requests_total'


def metrics(client) -> str:
    resp = client.simulate_get('/metrics')
    assert resp.status_code == 200
    return resp.text


def test_answers_are_counted_by_route_never_by_path(client):
    for _ in range(3):
        client.simulate_get(f'/images/{uuid.uuid4()}.jpeg')
    client.simulate_get('/no/such/path')
    client.simulate_get(f'/nowhere/{uuid.uuid4()}')

    text = metrics(client)

    assert value(text, REQUESTS, route=IMAGE, method='GET', status='404') == 3
    assert value(text, REQUESTS, route='unmatched', status='404') == 2
    routes = label_values(text, REQUESTS, 'route')
    assert not any('/images/' in route and '{' not in route for route in routes)


def test_made_up_methods_share_one_series(client):
    for method in ['BREW', 'WHEN', 'PROPFIND']:
        client.simulate_request(method, '/images')

    text = metrics(client)

    assert label_values(text, REQUESTS, 'method') <= {'GET', 'OTHER'}
    assert value(text, REQUESTS, route=IMAGES, method='OTHER') == 3


def test_the_answers_of_the_fast_path_are_counted_and_timed(config):
    config.clock = clock = FakeClock()
    client = falcon.testing.TestClient(create_served_app(config))
    upload = client.simulate_post('/images', body=encode(gradient(), 'PNG'))
    thumbnail = as_listed(upload.json)['thumbnails'][0]
    answers = [client.simulate_get(thumbnail) for _ in range(4)]

    text = metrics(client)

    assert [resp.headers['X-ASGILook-Cache'] for resp in answers] == [
        'Miss',
        *['Hit'] * 3,
    ]
    assert value(text, REQUESTS, route=THUMBNAIL, method='GET', status='200') == 4
    assert (
        value(text, 'asgilook_http_request_duration_seconds_count', route=THUMBNAIL)
        == 4
    )
    # No time passed on the test's clock: each in the first bucket, and all.
    assert value(text, 'asgilook_http_request_duration_seconds_sum') == 0
    for bound in ['0.0005', '10.0', '+Inf']:
        bucket = value(
            text,
            'asgilook_http_request_duration_seconds_bucket',
            route=THUMBNAIL,
            le=bound,
        )
        assert bucket == 4
    assert clock.now == 1000.0


def test_cache_lookups_say_which_tier_answered(config):
    client = falcon.testing.TestClient(create_served_app(config))
    upload = client.simulate_post('/images', body=encode(gradient(), 'PNG'))
    thumbnail = as_listed(upload.json)['thumbnails'][0]
    for _ in range(3):
        client.simulate_get(thumbnail)
    # Another worker's memory is empty: Redis has it.
    other = falcon.testing.TestClient(create_served_app(config))
    other.simulate_get(thumbnail)

    first, second = metrics(client), metrics(other)

    lookups = 'asgilook_cache_lookups_total'
    assert value(first, lookups, tier='memory', result='miss') == 1
    assert value(first, lookups, tier='redis', result='miss') == 1
    assert value(first, lookups, tier='memory', result='hit') == 2
    assert value(second, lookups, tier='redis', result='hit') == 1


def test_renders_are_counted_and_timed_by_format(client, image):
    for uri in image['thumbnails']:
        client.simulate_get(uri)
        client.simulate_get(uri)

    text = metrics(client)

    renders = len(image['thumbnails'])
    assert value(text, 'asgilook_renders_total', format='jpeg') == renders
    assert (
        value(text, 'asgilook_render_duration_seconds_count', format='jpeg') == renders
    )


def test_uploads_are_counted_by_status_and_stored_ones_measured(client):
    body = encode(gradient(), 'PNG')
    assert client.simulate_post('/images', body=body).status_code == 201
    assert client.simulate_post('/images', body=b'not an image').status_code == 415

    text = metrics(client)

    assert value(text, 'asgilook_uploads_total', status='201') == 1
    assert value(text, 'asgilook_uploads_total', status='415') == 1
    assert value(text, 'asgilook_upload_bytes_count') == 1
    assert value(text, 'asgilook_upload_bytes_sum') == len(body)


def test_the_app_alone_measures_an_upload_by_its_content_length(config):
    client = falcon.testing.TestClient(create_app(config))
    body = encode(gradient(), 'PNG')
    client.simulate_post('/images', body=body)

    assert value(metrics(client), 'asgilook_upload_bytes_sum') == len(body)


def test_the_metrics_are_never_cached(client):
    first = client.simulate_get('/metrics')
    second = client.simulate_get('/metrics')
    head = client.simulate_head('/metrics')

    assert first.headers['Cache-Control'] == 'no-store'
    assert first.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    assert 'X-ASGILook-Cache' not in second.headers
    assert value(second.text, REQUESTS, route='/metrics') == 1
    assert head.status_code == 200
    assert head.content == b''


@pytest.mark.parametrize('setting', ['0', 'off', 'false', 'no'])
def test_a_setting_turns_the_endpoint_off(config, setting):
    config.metrics = Config({'ASGI_LOOK_METRICS': setting}).metrics
    client = falcon.testing.TestClient(create_served_app(config))

    upload = client.simulate_post('/images', body=encode(gradient(), 'PNG'))
    thumbnail = as_listed(upload.json)['thumbnails'][0]
    answers = [client.simulate_get(thumbnail) for _ in range(2)]

    assert client.simulate_get('/metrics').status_code == 404
    assert [resp.status_code for resp in answers] == [200, 200]
    # Rendered, then sent by the fast path, uncounted.
    assert [resp.headers['X-ASGILook-Cache'] for resp in answers] == ['Miss', 'Hit']


async def test_open_event_streams_are_a_gauge(events_config):
    app = create_served_app(events_config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        async with conductor.get_stream('/events') as stream:
            await SSEReader(stream.stream).message()
            during = (await conductor.simulate_get('/metrics')).text
        after = (await conductor.simulate_get('/metrics')).text

    assert value(during, 'asgilook_event_subscribers') == 1
    assert value(after, 'asgilook_event_subscribers') == 0


def test_a_bad_setting_names_itself():
    with pytest.raises(ValueError, match='ASGI_LOOK_METRICS must be 1 or 0'):
        Config({'ASGI_LOOK_METRICS': 'maybe'})


def test_each_answer_falls_in_the_buckets_of_its_duration():
    tallies = Tallies()
    for seconds in [0.0003, 0.004, 0.004, 0.0005, 30.0]:
        tallies.answered(THUMBNAIL, 'GET', 200, seconds)

    text = generate_latest(_Families(tallies)).decode()

    def bucket(bound: str) -> float:
        name = 'asgilook_http_request_duration_seconds_bucket'
        return value(text, name, route=THUMBNAIL, le=bound)

    # Each bucket counts the answers that took no longer than its bound.
    assert [
        bucket(bound) for bound in ['0.0005', '0.001', '0.005', '10.0', '+Inf']
    ] == [
        2,
        2,
        4,
        4,
        5,
    ]
    assert value(text, 'asgilook_http_request_duration_seconds_sum') == pytest.approx(
        30.0088
    )


class _Families:
    """The metrics of one worker's tallies, as a scrape shows them."""

    def __init__(self, tallies):
        self._tallies = tallies

    def collect(self):
        return families([self._tallies.snapshot()])
