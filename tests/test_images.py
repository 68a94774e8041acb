import contextlib
import resource
import shutil
import signal

import falcon.testing
import PIL.Image
import pytest

from asgilook.app import create_served_app

from .fakes import as_listed
from .images import close_to, decode, encode, gradient, image_files, stored_file

FIRST_ID = '36562622-48e5-4a61-be67-e426b11821ed'


def test_list_images(client):
    resp1 = client.simulate_get('/images')
    assert resp1.status_code == 200
    assert resp1.headers.get('X-ASGILook-Cache') == 'Miss'
    assert resp1.json == []

    resp2 = client.simulate_get('/images')
    assert resp2.status_code == 200
    assert resp2.headers.get('X-ASGILook-Cache') == 'Hit'
    assert resp2.json == resp1.json


def test_missing_in_store(client):
    resp = client.simulate_get('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')
    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'
    assert 'GET /images' in resp.json['description']


def test_post_one_image(client, png_image, image_size):
    resp1 = client.simulate_post('/images', body=png_image)
    location = resp1.headers.get('Location')
    assert resp1.status_code == 201
    assert location == f'/images/{FIRST_ID}.jpeg'

    resp2 = client.simulate_get(location)
    assert resp2.status_code == 200
    assert resp2.headers['Content-Type'] == 'image/jpeg'
    assert image_size(resp2.content) == (640, 360)


def test_post_answers_the_image_object(client, png_image):
    resp = client.simulate_post('/images', body=png_image)

    assert resp.headers['Content-Type'] == 'application/json'
    image = as_listed(resp.json)
    assert image['id'] == FIRST_ID
    assert image['image'] == f'/images/{FIRST_ID}.jpeg'
    assert image['size'] == [640, 360]
    assert image['modified'].endswith(' GMT')
    assert image['thumbnails'] == [
        f'/thumbnails/{FIRST_ID}/320x180.jpeg',
        f'/thumbnails/{FIRST_ID}/160x90.jpeg',
    ]
    assert client.simulate_get('/images').json == [image]


def test_post_three_images(client, png_image):
    for _ in range(3):
        client.simulate_post('/images', body=png_image)

    resp = client.simulate_get('/images')
    images = [(item['image'], item['size']) for item in resp.json]
    assert images == [
        ('/images/36562622-48e5-4a61-be67-e426b11821ed.jpeg', [640, 360]),
        ('/images/3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74.jpeg', [640, 360]),
        ('/images/ba1c4951-73bc-45a4-a1f6-aa2b958dafa4.jpeg', [640, 360]),
    ]


@pytest.mark.parametrize(
    ('fmt', 'params'),
    [('PNG', {}), ('JPEG', {'quality': 95}), ('GIF', {}), ('BMP', {}), ('WEBP', {})],
)
def test_uploads_are_stored_as_jpeg_with_their_picture(client, fmt, params):
    original = gradient((320, 200))
    resp = client.simulate_post('/images', body=encode(original, fmt, **params))
    assert resp.status_code == 201

    stored = decode(client.simulate_get(resp.json['image']).content)
    assert stored.format == 'JPEG'
    assert stored.mode == 'RGB'
    assert stored.size == (320, 200)
    for point in [(40, 40), (280, 40), (40, 160), (280, 160)]:
        assert close_to(stored.getpixel(point), original.getpixel(point))


def test_download_is_the_stored_file(client, png_image, storage_path):
    image = as_listed(client.simulate_post('/images', body=png_image).json)

    resp = client.simulate_get(image['image'])

    stored = stored_file(storage_path, image['id']).read_bytes()
    assert resp.content == stored
    assert resp.headers['Content-Length'] == str(len(stored))


def test_a_file_removed_from_storage_is_not_found(client, png_image, storage_path):
    image = as_listed(client.simulate_post('/images', body=png_image).json)
    stored_file(storage_path, image['id']).unlink()

    assert client.simulate_get(image['image']).status_code == 404
    assert client.simulate_get(image['thumbnails'][0]).status_code == 404


def test_empty_upload_is_a_bad_request(client, storage_path):
    before = image_files(storage_path)

    resp = client.simulate_post('/images', body=b'')

    assert resp.status_code == 400
    assert resp.json['title'] == 'Empty upload'
    assert image_files(storage_path) == before
    assert client.simulate_get('/images').json == []


@pytest.mark.parametrize(
    'body', [b'hello, world', b'<html><body>hi</body></html>', bytes(range(256))]
)
def test_bytes_that_are_no_image_are_unsupported(client, storage_path, body):
    before = image_files(storage_path)

    resp = client.simulate_post('/images', body=body)

    assert resp.status_code == 415
    assert resp.json['title'] == 'Not an image'
    assert 'JPEG' in resp.json['description']
    assert image_files(storage_path) == before
    assert client.simulate_get('/images').json == []


def test_a_truncated_image_is_unprocessable(client, storage_path):
    png = encode(gradient(), 'PNG')
    before = image_files(storage_path)

    resp = client.simulate_post('/images', body=png[: len(png) // 2])

    assert resp.status_code == 422
    assert resp.json['title'] == 'Damaged image'
    assert image_files(storage_path) == before


def test_unknown_path_is_a_json_404(client):
    resp = client.simulate_get('/pictures')

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such resource'
    assert '/images' in resp.json['description']


@pytest.mark.parametrize(
    ('method', 'path', 'allowed'),
    [
        ('DELETE', '/images', {'GET', 'HEAD', 'POST'}),
        ('PUT', f'/images/{FIRST_ID}.jpeg', {'GET', 'HEAD', 'DELETE'}),
        ('POST', f'/thumbnails/{FIRST_ID}/64x64.jpeg', {'GET', 'HEAD'}),
    ],
)
def test_unsupported_method_is_a_json_405(client, method, path, allowed):
    resp = client.simulate_request(method, path)

    assert resp.status_code == 405
    assert set(resp.headers['Allow'].split(', ')) == allowed | {'OPTIONS'}
    assert resp.json['title'] == 'Method not allowed'
    assert resp.headers['Allow'] in resp.json['description']


def test_image_id_must_be_a_uuid(client):
    assert client.simulate_get('/images/not-a-uuid.jpeg').status_code == 404


def test_storage_path_may_be_any_path_like(config, png_image, tmp_path):
    for path in (tmp_path / 'as-path', str(tmp_path / 'as-str')):
        config.storage_path = path
        client = falcon.testing.TestClient(create_served_app(config))
        resp = client.simulate_post('/images', body=png_image)
        assert resp.status_code == 201
        assert client.simulate_get(resp.json['image']).status_code == 200


def test_storage_directory_is_created(config, png_image, tmp_path):
    config.storage_path = tmp_path / 'new' / 'nested'
    client = falcon.testing.TestClient(create_served_app(config))

    resp = client.simulate_post('/images', body=png_image)

    assert resp.status_code == 201
    with PIL.Image.open(stored_file(config.storage_path, resp.json['id'])) as stored:
        assert stored.size == (640, 360)


@contextlib.contextmanager
def file_size_limit(limit):
    """Make this process's writes past `limit` bytes fail (EFBIG), as on a full disk.

    The limit holds for every file the process writes, so it is kept to one
    request: pytest writing its report to a file must not meet it.
    """
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


async def test_no_room_for_the_upload_is_507(config, storage_path, png_image):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        # The catalog is open (its files made) before the disk fills.
        before = image_files(storage_path)
        with file_size_limit(len(png_image) // 2):
            resp = await conductor.simulate_post('/images', body=png_image)

    assert resp.status_code == 507
    assert resp.json['title'] == 'Storage full'
    assert image_files(storage_path) == before


async def test_no_room_for_the_stored_jpeg_is_507(config, storage_path):
    # A flat PNG is small; its JPEG is not: the upload fits, the image does not.
    upload = encode(gradient((1200, 1200)), 'PNG')
    before = image_files(storage_path)

    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        with file_size_limit(len(upload) + 1):
            resp = await conductor.simulate_post('/images', body=upload)

    assert resp.status_code == 507
    assert resp.json['title'] == 'Storage full'
    assert image_files(storage_path) == before


async def test_storage_gone_while_serving_is_503(config, png_image, tmp_path):
    config.storage_path = tmp_path / 'volume'
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        # The volume goes away, with the key asgilook made in it at start.
        shutil.rmtree(config.storage_path)

        resp = await conductor.simulate_post('/images', body=png_image)

        assert resp.status_code == 503
        assert resp.json['title'] == 'Storage unavailable'
        assert resp.headers['Retry-After'] == '60'
        listing = await conductor.simulate_get('/images')
        assert listing.status_code == 503
        assert listing.json['title'] == 'Storage unavailable'
