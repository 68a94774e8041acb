"""docs/configuration.md says what Config reads: each setting, bounds, default."""

import os
import pathlib
import re

import pytest

from asgilook.config import Config
from asgilook.errors import ConfigError

PAGE = pathlib.Path(__file__).parents[1] / 'docs' / 'configuration.md'
# | `attribute` | `VARIABLE` or — | accepts | default … |
ROW = re.compile(r'^\| `([\w.]+)` \| (?:`(\w+)`|—) \| ([^|]+) \| (.+) \|$', re.M)
CPUS = 'the number of CPUs'


def _rows() -> dict[str, tuple[str | None, str, str]]:
    return {
        attribute: (variable or None, accepts.strip(), default.strip())
        for attribute, variable, accepts, default in ROW.findall(PAGE.read_text())
    }


def _value(config: Config, attribute: str) -> object:
    for name in attribute.split('.'):
        config = getattr(config, name)
    return config


def _shown(value: object) -> str:
    """Return a default as the page writes it."""
    if value is None or value == frozenset():
        return 'none'
    if isinstance(value, bool):
        return f'`{int(value)}`'
    if isinstance(value, float) and value.is_integer():
        return f'`{int(value)}`'
    if callable(value):
        module = value.__module__.removesuffix('.utils')
        return f'`{module}.{value.__qualname__}`'
    return f'`{value}`'


def test_every_variable_config_reads_has_one_row():
    documented = [variable for variable, _, _ in _rows().values() if variable]

    assert sorted(documented) == sorted(Config(environ={}).setting_names)


@pytest.mark.parametrize('attribute', sorted(_rows()))
def test_a_row_names_an_attribute_with_its_bounds_and_default(attribute):
    config = Config(environ={})
    variable, accepts, default = _rows()[attribute]
    value = _value(config, attribute)

    if variable:
        assert accepts == config.accepted_values[variable]
    else:
        assert accepts == '—'
    if default.startswith(CPUS):
        assert value == (os.cpu_count() or 1)
    else:
        assert default.startswith(_shown(value))


def test_the_page_shows_the_bounds_a_bad_value_is_refused_with():
    # Its bounds are the words of the error a value beyond them gets.
    _, accepts, _ = _rows()['jpeg_quality']

    with pytest.raises(ConfigError, match=f'ASGI_LOOK_JPEG_QUALITY must be {accepts},'):
        Config(environ={'ASGI_LOOK_JPEG_QUALITY': '101'})
