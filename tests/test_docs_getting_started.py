"""The walk-through of Getting started, run as pasted against a real
`python -m asgilook`: every command answers what the page shows."""

import pathlib
import subprocess
import sys

import pytest

from . import docs, servers

WALK_THROUGH = 'A walk-through with curl'
# Where the page's reader runs the service (the launcher's default).
DOCUMENTED_URL = 'http://127.0.0.1:8000'
MARK = '@@ example'


def _run(examples: list[docs.Example], workdir: pathlib.Path, url: str) -> list[str]:
    """Run the examples in one shell, as a reader pastes them; return each's output."""
    script = ''.join(
        f"echo '{MARK}'\n{example.commands.replace(DOCUMENTED_URL, url)}"
        for example in examples
    )
    shell = subprocess.run(
        ['bash', '-c', script],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.stderr == ''
    # curl -D - writes the head's lines as they came, each ending in CRLF.
    return shell.stdout.replace('\r\n', '\n').split(MARK + '\n')[1:]


def test_the_readme_walks_through_as_getting_started_does():
    assert docs.section('README.md', WALK_THROUGH) == docs.section(
        'docs/getting-started.md', WALK_THROUGH
    )


def test_the_walk_through_shows_what_each_step_prints():
    examples = docs.examples(docs.section('docs/getting-started.md', WALK_THROUGH))

    assert len(examples) >= 6
    assert all(example.output for example in examples)


@pytest.mark.live
def test_the_walk_through_answers_as_the_page_shows(tmp_path, live_redis):
    examples = docs.examples(docs.section('docs/getting-started.md', WALK_THROUGH))
    port = servers.free_port()
    # The reader's directory: the virtualenv of the set-up, and nothing else.
    workdir = tmp_path / 'reader'
    workdir.mkdir()
    (workdir / '.venv').symlink_to(pathlib.Path(sys.prefix))
    process = servers.start_launcher(tmp_path / 'images', live_redis, port)
    try:
        outputs = _run(examples, workdir, f'http://127.0.0.1:{port}')
    finally:
        servers.stop(process)
        # What it logged, shown should the page and the service disagree.
        _, log = process.communicate()

    assert [docs.steady(output) for output in outputs] == [
        docs.steady(example.output or '') for example in examples
    ], log.decode()
