"""GET /health of hosts over PostgreSQL and an S3 object store (real engines)."""

import pytest

from asgilook.storage.objects import Objects

from .shared import hosts


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


async def test_a_host_whose_database_and_bucket_answer_is_ok(
    tmp_path, database_url, storage_url
):
    async with hosts(tmp_path, database_url, storage_url, count=1) as [host]:
        resp = await host.simulate_get('/health')

    assert resp.status_code == 200
    assert resp.json['checks'] == {'catalog': 'ok', 'storage': 'ok', 'redis': 'ok'}


async def test_a_stopped_database_is_503_until_it_is_back(
    tmp_path, database_url, storage_url, postgres_server
):
    async with hosts(tmp_path, database_url, storage_url, count=1) as [host]:
        with postgres_server.stopped():
            during = await host.simulate_get('/health')
        after = await host.simulate_get('/health')

    assert during.status_code == 503
    assert during.json == {
        'status': 'unavailable',
        'checks': {'catalog': 'unavailable', 'storage': 'ok', 'redis': 'ok'},
    }
    assert after.status_code == 200


async def test_a_stopped_object_store_is_503_until_it_is_back(
    tmp_path, database_url, storage_url, seaweed_server
):
    async with hosts(tmp_path, database_url, storage_url, count=1) as [host]:
        with seaweed_server.stopped():
            during = await host.simulate_get('/health')
        after = await host.simulate_get('/health')

    assert during.status_code == 503
    assert during.json['checks'] == {
        'catalog': 'ok',
        'storage': 'unavailable',
        'redis': 'ok',
    }
    assert after.status_code == 200


async def test_an_object_store_not_connected_to_says_so(tmp_path, storage_url):
    objects = Objects(storage_url, tmp_path)
    await objects.prepare()
    await objects.release()

    with pytest.raises(OSError, match='not connected'):
        await objects.check()
