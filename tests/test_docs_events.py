"""The events page's example, run as pasted against a real `python -m asgilook`:
its commands make a picture, upload it and delete it, and a stream sees both."""

import pathlib
import subprocess
import sys

import httpx
import pytest

from . import docs, servers

DOCUMENTED_URL = 'http://127.0.0.1:8000'


def _pasted_commands() -> str:
    """Return the page's block that makes its picture (and uses it)."""
    text = (docs.ROOT / 'docs' / 'events.md').read_text()
    [commands] = [
        example.commands
        for example in docs.examples(text)
        if example.commands.startswith('.venv/bin/python -c')
    ]
    return commands


def _events(stream: httpx.Response, count: int) -> list[str]:
    """Return the names of the next count events of an SSE stream."""
    names: list[str] = []
    for line in stream.iter_lines():
        if line.startswith('event: '):
            names.append(line.removeprefix('event: '))
            if len(names) == count:
                break
    return names


@pytest.mark.live
def test_the_events_example_uploads_and_deletes_what_a_stream_sees(
    tmp_path, live_redis
):
    port = servers.free_port()
    url = f'http://127.0.0.1:{port}'
    workdir = tmp_path / 'reader'
    workdir.mkdir()
    (workdir / '.venv').symlink_to(pathlib.Path(sys.prefix))
    process = servers.start_launcher(tmp_path / 'images', live_redis, port)
    try:
        with (
            httpx.Client(timeout=20) as client,
            client.stream('GET', url + '/events') as stream,
        ):
            shell = subprocess.run(
                ['bash', '-c', _pasted_commands().replace(DOCUMENTED_URL, url)],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            names = _events(stream, 2)
        listed = httpx.get(url + '/images').json()
    finally:
        servers.stop(process)
        process.communicate()

    assert (shell.returncode, shell.stderr) == (0, '')
    assert names == ['image.created', 'image.deleted']
    assert listed == []
