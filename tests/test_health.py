"""GET /health: ok, degraded without Redis, 503 without the catalog or the storage."""

import shutil

import falcon.testing
import pytest

from asgilook.app import create_served_app

from .images import encode, gradient


def test_a_working_service_is_ok(client):
    resp = client.simulate_get('/health')

    assert resp.status_code == 200
    assert resp.json == {
        'status': 'ok',
        'checks': {'catalog': 'ok', 'storage': 'ok', 'redis': 'ok'},
    }
    assert resp.headers['Cache-Control'] == 'no-store'
    # Never kept by the cache, whatever it says.
    assert 'X-ASGILook-Cache' not in resp.headers


def test_head_answers_as_get_without_a_body(client):
    resp = client.simulate_head('/health')

    assert resp.status_code == 200
    assert resp.content == b''
    assert resp.headers['Cache-Control'] == 'no-store'


async def test_without_redis_it_is_degraded_and_still_200(config, redis_server):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        before = await conductor.simulate_get('/health')
        redis_server.connected = False
        during = await conductor.simulate_get('/health')
        redis_server.connected = True
        after = await conductor.simulate_get('/health')

    assert before.json['status'] == 'ok'
    assert during.status_code == 200
    assert during.json == {
        'status': 'degraded',
        'checks': {'catalog': 'ok', 'storage': 'ok', 'redis': 'unavailable'},
    }
    # Said as it is now: the answer of a moment ago was not kept.
    assert after.json['status'] == 'ok'


async def test_a_storage_directory_removed_is_503(config, storage_path):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        upload = await conductor.simulate_post(
            '/images', body=encode(gradient(), 'PNG')
        )
        shutil.rmtree(storage_path)
        resp = await conductor.simulate_get('/health')
        head = await conductor.simulate_head('/health')

    assert upload.status_code == 201
    assert resp.status_code == 503
    assert resp.json == {
        'status': 'unavailable',
        'checks': {'catalog': 'unavailable', 'storage': 'unavailable', 'redis': 'ok'},
    }
    assert resp.headers['Cache-Control'] == 'no-store'
    assert head.status_code == 503


@pytest.mark.parametrize('method', ['POST', 'DELETE'])
def test_it_takes_only_get_and_head(client, method):
    resp = client.simulate_request(method, '/health')

    assert resp.status_code == 405
