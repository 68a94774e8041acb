"""docs/running.md's table of options is `python -m asgilook --help`'s, and the
pages name no option the launcher lacks."""

import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).parents[1] / 'docs'
# | `--option` | default | what it bounds |
ROW = re.compile(r'^\| `(--[a-z-]+)` \| (?:`([^`]+)`|—) \|', re.M)


@pytest.fixture(scope='module')
def launcher_options() -> dict[str, str | None]:
    """Return each option of the launcher's help with its default."""
    shown = subprocess.run(
        [sys.executable, '-m', 'asgilook', '--help'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    options = {}
    # Each option starts a line; its help may go on below it.
    for entry in re.split(r'\n(?=  -)', shown.split('\noptions:\n')[1]):
        name = re.match(r'  (?:-\w, )?(--[a-z-]+)', entry)[1]
        default = re.search(r'\(default: ([^)]+)\)', entry)
        options[name] = default[1] if default else None
    del options['--help']
    return options


def _number(text: str | None) -> float | str | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return text


def test_the_table_of_options_is_the_launchers(launcher_options):
    table = dict(ROW.findall((DOCS / 'running.md').read_text()))
    table = {option: default or None for option, default in table.items()}

    assert {o: _number(d) for o, d in table.items()} == {
        o: _number(d) for o, d in launcher_options.items()
    }


def test_the_proxy_page_names_only_the_launchers_options(launcher_options):
    named = set(re.findall(r'`(--[a-z-]+)', (DOCS / 'reverse-proxy.md').read_text()))

    assert named <= set(launcher_options)
