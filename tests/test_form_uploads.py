"""Uploads as forms send them: multipart/form-data with a file part named image."""

import asyncio
import os
import pathlib
import random

import falcon
import falcon.testing
import PIL.Image
import pytest

from asgilook.app import create_served_app
from asgilook.storage.files import TEMPORARY_DIRECTORY

from .asgi import DISCONNECT, STALL, body, call
from .forms import BOUNDARY, CONTENT_TYPE, field, form, image_form
from .images import decode, encode, gradient, heif, image_files, phone_photo
from .refusals import images_and_spools


def post_form(client, data: bytes, content_type: str = CONTENT_TYPE):
    return client.simulate_post('/images', body=data, content_type=content_type)


def assert_form_refused(client, storage_path, data, status, title, **kwargs):
    resp = post_form(client, data, **kwargs)

    assert resp.status_code == status, resp.text
    assert resp.json['title'] == title
    assert images_and_spools(storage_path) == []
    assert client.simulate_get('/images').json == []
    return resp


def _png() -> bytes:
    return encode(gradient((320, 200)), 'PNG')


def test_a_form_upload_is_answered_as_a_raw_one(client):
    raw = client.simulate_post('/images', body=_png(), content_type='image/png')

    resp = post_form(client, image_form(_png()))

    assert resp.status_code == 201, resp.text
    assert resp.headers['location'] == resp.json['image']
    assert set(resp.json) == set(raw.json)
    assert resp.json['size'] == raw.json['size'] == [320, 200]
    assert resp.json['delete_token']
    stored = client.simulate_get(resp.json['image'])
    assert decode(stored.content).size == (320, 200)
    assert [image['id'] for image in client.simulate_get('/images').json] == [
        raw.json['id'],
        resp.json['id'],
    ]


def test_the_photo_of_a_phone_is_uploaded_through_a_form(client):
    data = form(field('image', phone_photo(), 'IMG_0001.HEIC', 'image/heic'))

    resp = post_form(client, data)

    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == [768, 1024]


def test_other_fields_are_ignored_wherever_they_are(client):
    data = form(
        field('csrf_token', b'x' * 100),
        field('caption', b'My cat', None, 'text/plain'),
        field('image', heif(gradient((320, 200))), 'cat.heic', 'image/heic'),
        field('attachment', b'not read', 'notes.txt', 'text/plain'),
        field('submit', b'Upload'),
    )

    resp = post_form(client, data)

    assert resp.status_code == 201, resp.text
    assert resp.json['size'] == [320, 200]


def test_a_content_type_of_any_case_and_parameters_is_a_form(client):
    content_type = f'Multipart/Form-Data; charset=utf-8; boundary="{BOUNDARY}"'

    resp = post_form(client, image_form(_png()), content_type=content_type)

    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    'data',
    [
        form(field('photo', _png(), 'photo.png', 'image/png')),
        # A field named image that is no file: no filename.
        form(field('image', _png())),
        form(field('caption', b'no picture')),
        form(),
    ],
    ids=['another name', 'not a file', 'fields only', 'empty form'],
)
def test_a_form_without_a_file_part_named_image_is_400(client, storage_path, data):
    resp = assert_form_refused(client, storage_path, data, 400, 'No image in the form')

    assert 'file part named image' in resp.json['description']
    assert 'curl -F image=@photo.jpg' in resp.json['description']


def test_a_form_of_two_images_stores_neither(client, storage_path):
    data = image_form(_png(), field('image', _png(), 'second.png', 'image/png'))

    resp = assert_form_refused(
        client, storage_path, data, 400, 'More than one image in the form'
    )

    assert 'each image in a request of its own' in resp.json['description']


def test_a_file_part_that_is_no_image_is_415(client, storage_path):
    data = form(field('image', b'Dear diary,', 'diary.txt', 'text/plain'))

    resp = assert_form_refused(client, storage_path, data, 415, 'Not an image')

    assert 'AVIF, HEIC' in resp.json['description']


def test_a_form_whose_file_was_not_chosen_is_an_empty_upload(client, storage_path):
    # What a browser sends for a file input left empty.
    data = form(field('image', b'', '', 'application/octet-stream'))

    resp = assert_form_refused(client, storage_path, data, 400, 'Empty upload')

    assert 'file part named image' in resp.json['description']


@pytest.mark.parametrize(
    ('data', 'content_type'),
    [
        (image_form(_png()), 'multipart/form-data'),
        (b'not a form at all', CONTENT_TYPE),
        (image_form(_png())[:-40], CONTENT_TYPE),
        (image_form(_png()).replace(b'\r\n\r\n', b'\r\n', 1), CONTENT_TYPE),
    ],
    ids=['no boundary', 'no parts', 'no closing boundary', 'part headers unended'],
)
def test_a_malformed_form_is_400(client, storage_path, data, content_type):
    resp = assert_form_refused(
        client, storage_path, data, 400, 'Malformed form', content_type=content_type
    )

    assert 'multipart/form-data' in resp.json['description']


def test_a_raw_body_that_is_no_image_tells_both_ways_to_upload(client, storage_path):
    resp = client.simulate_post('/images', body=b'hello', content_type='text/plain')

    assert resp.status_code == 415
    description = resp.json['description']
    assert 'as the request body' in description
    assert 'Content-Type: image/jpeg' in description
    assert 'file part named image' in description
    assert 'curl -F image=@photo.jpg' in description


def test_an_image_part_over_the_limit_is_413(config, storage_path):
    # The form is within its allowance; the image is a byte too large.
    config.max_upload_size = len(_png()) - 1
    app = create_served_app(config)
    body_ = image_form(_png())

    status, _, error, _ = falcon.async_to_sync(
        call,
        app,
        'POST',
        '/images',
        [body(body_[:500], more=True), body(body_[500:])],
        [('Content-Type', CONTENT_TYPE)],
    )

    assert (status, error['title']) == (413, 'Upload too large')
    assert images_and_spools(storage_path) == []


def test_a_form_declaring_more_than_the_limit_is_refused_unread(config, storage_path):
    config.max_upload_size = 1000
    app = create_served_app(config)
    headers = [('Content-Type', CONTENT_TYPE), ('Content-Length', str(1000 + 65537))]

    status, _, error, pulled = falcon.async_to_sync(
        call, app, 'POST', '/images', [STALL], headers
    )

    assert (status, error['title']) == (413, 'Upload too large')
    # The gate's own first answer only: no byte of the body was asked for.
    assert pulled <= 1


def test_a_form_of_ignored_fields_past_the_allowance_is_413(config, storage_path):
    config.max_upload_size = 10_000
    app = create_served_app(config)
    padding = field('padding', b'x' * 80_000)
    chunks = image_form(_png(), padding)
    events = [
        body(chunks[i : i + 16384], more=True) for i in range(0, len(chunks), 16384)
    ]

    status, _, error, _ = falcon.async_to_sync(
        call,
        app,
        'POST',
        '/images',
        [*events, body(b'')],
        [('Content-Type', CONTENT_TYPE)],
    )

    assert (status, error['title']) == (413, 'Upload too large')
    assert images_and_spools(storage_path) == []


def test_a_form_whose_client_went_away_stores_nothing(config, storage_path):
    app = create_served_app(config)
    data = image_form(_png())
    headers = [('Content-Type', CONTENT_TYPE), ('Content-Length', str(len(data)))]

    status, _, error, _ = falcon.async_to_sync(
        call,
        app,
        'POST',
        '/images',
        [body(data[: len(data) // 2], more=True), DISCONNECT],
        headers,
    )

    assert (status, error['title']) == (400, 'Upload incomplete')
    assert image_files(storage_path) == []


def test_a_stalled_form_times_out_and_stores_nothing(config, storage_path):
    config.body_timeout = 0.05
    app = create_served_app(config)
    data = image_form(_png())

    status, _, error, _ = falcon.async_to_sync(
        call,
        app,
        'POST',
        '/images',
        [body(data[:-100], more=True), STALL],
        [('Content-Type', CONTENT_TYPE)],
    )

    assert (status, error['title']) == (408, 'Upload stalled')
    assert image_files(storage_path) == []


class _SpoolProbe(asyncio.Event):
    """An event of the body that, when the app asks for it, notes the spool's size."""

    def __init__(self, incoming: pathlib.Path) -> None:
        super().__init__()
        self.set()
        self._incoming = incoming
        self.spooled: int | None = None

    async def wait(self) -> bool:
        names = os.listdir(self._incoming) if self._incoming.is_dir() else []
        self.spooled = sum((self._incoming / name).stat().st_size for name in names)
        return True


def test_a_large_image_part_is_spooled_as_it_arrives(config, storage_path):
    noise = random.Random(7).randbytes(1200 * 1200 * 3)
    large = encode(PIL.Image.frombytes('RGB', (1200, 1200), noise), 'PNG')
    data = image_form(large)
    half = len(data) // 2
    probe = _SpoolProbe(pathlib.Path(storage_path) / TEMPORARY_DIRECTORY)
    pieces = [body(data[i : i + 65536], more=True) for i in range(0, half, 65536)]
    pieces += [probe, body(data[len(pieces) * 65536 :])]
    app = create_served_app(config)

    status, _, image, _ = falcon.async_to_sync(
        call, app, 'POST', '/images', pieces, [('Content-Type', CONTENT_TYPE)]
    )

    assert status == 201, image
    assert image['size'] == [1200, 1200]
    # Half the form had come, and most of it was on disk already: the file
    # part went to the spool as it arrived, not held whole until the end.
    assert probe.spooled is not None
    assert probe.spooled > half - 2 * 65536 - 1024 * 1024
    assert os.listdir(pathlib.Path(storage_path) / TEMPORARY_DIRECTORY) == []
