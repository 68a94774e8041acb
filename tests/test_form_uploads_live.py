"""Form uploads against a real uvicorn: curl -F, a browser's form, a form cut short."""

import json
import os
import shutil
import signal
import subprocess

import falcon.testing
import httpx
import pytest

from asgilook.app import create_served_app

from . import servers
from .fakes import make_config
from .forms import CONTENT_TYPE, image_form
from .images import encode, gradient, image_files, phone_photo, photo
from .test_live_uploads import connect, taken, wait_for

pytestmark = pytest.mark.live

CURL_HELP = 'The live form tests run curl: install it (apt-get install curl).'


@pytest.fixture
def server(tmp_path, live_redis):
    """A real uvicorn whose bodies time out after 2 s; yields (URL, storage, pid)."""
    storage = tmp_path / 'images'
    port = servers.free_port()
    process = servers.start_uvicorn(
        storage, live_redis, port, env={'ASGI_LOOK_BODY_TIMEOUT': '2'}
    )
    try:
        yield f'http://127.0.0.1:{port}', storage, process.pid
    finally:
        servers.stop(process)


def curl(base_url: str, *fields: str) -> tuple[int, dict, dict]:
    """POST /images as `curl -F` does; return the status, headers and JSON."""
    binary = shutil.which('curl')
    assert binary, CURL_HELP
    args = [arg for form_field in fields for arg in ('-F', form_field)]
    done = subprocess.run(
        [binary, '-sS', '-i', '--max-time', '30', *args, base_url + '/images'],
        capture_output=True,
        check=True,
    )
    head, _, text = done.stdout.partition(b'\r\n\r\n')
    status_line, *lines = head.decode().split('\r\n')
    headers = dict(line.lower().split(': ', 1) for line in lines)
    return int(status_line.split()[1]), headers, json.loads(text)


def test_curl_f_uploads_a_photo(server, tmp_path):
    base_url, _, _ = server
    (tmp_path / 'photo.jpg').write_bytes(photo((640, 480)))

    status, headers, image = curl(
        base_url, f'image=@{tmp_path / "photo.jpg"}', 'caption=ignored'
    )

    assert status == 201, image
    assert headers['location'] == image['image']
    assert image['size'] == [640, 480]
    assert image['delete_token']
    assert httpx.get(base_url + image['image']).headers['content-type'] == (
        'image/jpeg'
    )
    assert [listed['id'] for listed in httpx.get(base_url + '/images').json()] == [
        image['id']
    ]


def test_curl_f_uploads_the_heic_of_a_phone(server, tmp_path):
    base_url, _, _ = server
    (tmp_path / 'IMG_0001.HEIC').write_bytes(phone_photo())

    status, _, image = curl(base_url, f'image=@{tmp_path / "IMG_0001.HEIC"}')

    assert status == 201, image
    assert image['size'] == [768, 1024]


@pytest.mark.parametrize(
    ('name', 'content', 'status', 'title'),
    [
        ('image', b'Dear diary,', 415, 'Not an image'),
        ('photo', None, 400, 'No image in the form'),
    ],
)
def test_curl_f_without_an_image_is_told_what_to_send(
    server, tmp_path, name, content, status, title
):
    base_url, storage, _ = server
    path = tmp_path / 'upload'
    path.write_bytes(content or encode(gradient(), 'PNG'))

    answered, _, error = curl(base_url, f'{name}=@{path}')

    assert (answered, error['title']) == (status, title)
    assert 'curl -F image=@photo.jpg' in error['description']
    assert httpx.get(base_url + '/images').json() == []
    assert image_files(storage) == []


def test_a_browsers_form_uploads(server):
    # httpx encodes files and fields as a browser's form does.
    base_url, _, _ = server

    resp = httpx.post(
        base_url + '/images',
        files={'image': ('cat.png', encode(gradient((320, 200)), 'PNG'), 'image/png')},
        data={'csrf_token': 'abc', 'submit': 'Upload'},
    )

    assert resp.status_code == 201, resp.text
    assert resp.json()['size'] == [320, 200]


@pytest.mark.parametrize('cut', [0.3, 0.99])
def test_a_form_whose_client_went_away_is_not_stored(server, cut):
    base_url, storage, pid = server
    data = image_form(encode(gradient((400, 300)), 'PNG'))
    head = (
        b'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\n'
        b'Content-Type: %s\r\nContent-Length: %d\r\n\r\n'
        % (CONTENT_TYPE.encode(), len(data))
    )

    with connect(base_url) as sock:
        sock.sendall(head + data[: int(len(data) * cut)])
        assert wait_for(lambda: taken(base_url, [sock]))

    # Stopped, uvicorn ends each request it began first.
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not servers.alive(pid))
    again = falcon.testing.TestClient(create_served_app(make_config(storage)))
    assert again.simulate_get('/images').json == []
    assert image_files(storage) == []
