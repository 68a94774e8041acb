"""Unknown ASGI_LOOK_* variables, each named with the setting nearest to it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from ..config import PREFIX, TEST_PREFIX, Config


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """Say of each ASGI_LOOK_* variable of environ that no setting has its name.

    Each is named with the setting nearest to it, if one is close: a
    misspelled setting is otherwise silently ignored.
    """
    known = Config({}).setting_names
    return [
        f'unknown setting {name}{_did_you_mean(name, known)}'
        for name in sorted(environ)
        if name.startswith(PREFIX)
        # Read by asgilook's tests (tests/servers.py, tests/browser.py),
        # not by the service.
        and not name.startswith(TEST_PREFIX)
        and name not in known
    ]


def _did_you_mean(name: str, known: frozenset[str]) -> str:
    # The nearest is judged on the whole names, its closeness on what follows
    # the prefix, which alone makes any two names look alike to difflib
    # (ASGI_LOOK_FOO is 0.69 like ASGI_LOOK_SECRET).
    [nearest] = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0)
    tail = len(PREFIX)
    matcher = difflib.SequenceMatcher(None, name[tail:], nearest[tail:])
    if matcher.ratio() < _CLOSE:
        return ''
    return f' (did you mean {nearest}?)'


# How alike (difflib's ratio) a name must be to a setting to be taken for it.
_CLOSE = 0.6
