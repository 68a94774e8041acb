"""Only the uploader deletes: the delete token of POST /images, as a bearer token."""

import base64
import string

import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .fakes import as_listed, make_config, owner, two_workers, upload_through
from .images import encode, gradient, image_files

UNKNOWN = '/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg'
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + '-_'


@pytest.fixture
def uploaded(client):
    resp = client.simulate_post('/images', body=encode(gradient(), 'PNG'))
    assert resp.status_code == 201
    return resp.json


def test_the_upload_answer_alone_carries_the_delete_token(client, uploaded):
    token = uploaded['delete_token']
    assert len(token) == 43
    image = as_listed(uploaded)
    for uri in ['/images', '/images?limit=10']:
        assert client.simulate_get(uri).json == [image]
    assert token.encode() not in client.simulate_get(image['image']).content


def test_the_uploader_deletes_with_the_token(client, uploaded, storage_path):
    resp = client.simulate_delete(uploaded['image'], headers=owner(uploaded))

    assert resp.status == falcon.HTTP_204
    assert client.simulate_get(uploaded['image']).status_code == 404
    assert image_files(storage_path) == []
    # The token of an image that is gone: it is gone.
    again = client.simulate_delete(uploaded['image'], headers=owner(uploaded))
    assert again.status_code == 404


@pytest.mark.parametrize(
    'authorization',
    [None, '', 'Bearer', 'Bearer   ', 'Basic dXNlcjpwYXNz', 'token-without-scheme'],
)
def test_a_delete_without_a_bearer_token_is_401(
    client, uploaded, storage_path, authorization
):
    headers = {} if authorization is None else {'Authorization': authorization}
    before = image_files(storage_path)

    resp = client.simulate_delete(uploaded['image'], headers=headers)

    assert resp.status_code == 401
    assert resp.headers['WWW-Authenticate'].startswith('Bearer')
    assert resp.json['title'] == 'Delete token required'
    assert 'delete_token' in resp.json['description']
    assert image_files(storage_path) == before
    assert client.simulate_get(uploaded['image']).status_code == 200


def test_a_forged_or_another_images_token_is_403(client, uploaded, storage_path):
    other = client.simulate_post('/images', body=encode(gradient((64, 64)), 'PNG'))
    token = uploaded['delete_token']
    forged = [
        other.json['delete_token'],
        ('A' if token[0] != 'A' else 'B') + token[1:],
        token + 'AAAA',
        # Other spellings of the same signature are not the token either.
        token + '=',
        token[:10] + '!*' + token[10:],
        base64.b64encode(base64.urlsafe_b64decode(token + '=')).decode(),
        # The last character's two bits that the signature has not.
        token[:-1] + ALPHABET[ALPHABET.index(token[-1]) ^ 1],
        'not base64 at all!',
        'é' * 43,
        'x',
    ]
    before = image_files(storage_path)

    for attempt in forged:
        headers = {'Authorization': f'Bearer {attempt}'}
        resp = client.simulate_delete(uploaded['image'], headers=headers)
        assert resp.status_code == 403, attempt
        assert resp.json['title'] == 'Not allowed to delete'
        assert 'WWW-Authenticate' not in resp.headers

    assert image_files(storage_path) == before
    assert client.simulate_get(uploaded['image']).status_code == 200


def test_an_unknown_image_is_refused_as_a_known_one_is(client, uploaded):
    # Without the image's own token, nothing tells whether it exists.
    anonymous = client.simulate_delete(UNKNOWN)
    forged = client.simulate_delete(UNKNOWN, headers=owner(uploaded))

    assert anonymous.status_code == 401
    assert forged.status_code == 403
    assert (
        forged.json
        == client.simulate_delete(
            uploaded['image'], headers={'Authorization': 'Bearer AAAA'}
        ).json
    )


def test_the_scheme_is_read_in_any_case(client, uploaded):
    headers = {'Authorization': f'bearer {uploaded["delete_token"]}'}
    assert client.simulate_delete(uploaded['image'], headers=headers).status_code == 204


async def test_every_worker_and_a_restart_take_the_token(storage_path, redis_server):
    async with two_workers(storage_path, redis_server) as (first, second):
        one = await upload_through(first)
        two = await upload_through(first)
        resp = await second.simulate_delete(one['image'], headers=owner(one))
        assert resp.status_code == 204

    restarted = create_served_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(restarted) as conductor:
        resp = await conductor.simulate_delete(two['image'], headers=owner(two))
        assert resp.status_code == 204
        assert (await conductor.simulate_get('/images')).json == []


async def test_another_secret_refuses_the_tokens_of_the_one_before(
    storage_path, redis_server
):
    config = make_config(storage_path, redis_server)
    config.secret = b'the first secret of this service'
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)

    config = make_config(storage_path, redis_server)
    config.secret = b'a rotated secret, older tokens die'
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        refused = await conductor.simulate_delete(image['image'], headers=owner(image))
        assert refused.status_code == 403
        assert (await conductor.simulate_get(image['image'])).status_code == 200
