"""Uploads asgilook must refuse: send one, and check it left nothing behind."""

from asgilook.storage.files import TEMPORARY_PREFIX

from .images import image_files


def upload(client, body):
    return client.simulate_post('/images', body=body)


def assert_refused(client, storage_path, body, status, title):
    """The upload gets status and title, and leaves nothing behind."""
    resp = upload(client, body)

    assert resp.status_code == status, resp.text
    assert resp.json['title'] == title
    assert resp.json['description']
    assert images_and_spools(storage_path) == []
    assert client.simulate_get('/images').json == []
    return resp


def images_and_spools(storage_path) -> list[str]:
    return [
        name
        for name in image_files(storage_path)
        if name.endswith('.jpeg') or name.startswith(TEMPORARY_PREFIX)
    ]
