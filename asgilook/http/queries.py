"""Query strings of the routes that take one: known parameters, each once."""

from __future__ import annotations

from collections.abc import Callable

import falcon
from falcon.util.uri import parse_query_string

# The most of an unknown parameter's name an error repeats.
_SHOWN_NAME = 40


def parameters(
    query: str,
    accepted: frozenset[str],
    unknown: Callable[[str], str],
    repeated: str,
) -> dict[str, str]:
    """Return a query's parameters, by name.

    HTTPBadRequest for a name not accepted (its description `unknown(name)`)
    or one given twice (`repeated`).
    """
    params = parse_query_string(query, keep_blank=True, csv=False)
    names = sorted(set(params) - accepted)
    if names:
        name = names[0]
        shown = name if len(name) <= _SHOWN_NAME else f'{name[:_SHOWN_NAME]}…'
        raise falcon.HTTPBadRequest(
            title='Unknown parameter', description=unknown(shown)
        )
    given = {name: value for name, value in params.items() if isinstance(value, str)}
    if len(given) != len(params):
        raise falcon.HTTPBadRequest(title='Repeated parameter', description=repeated)
    return given


def whole_number(text: str, max_digits: int) -> int | None:
    """Return the number text spells in ASCII digits, if it has max_digits at most.

    Spaces around it and zeros before it are allowed; None for anything else.
    (Python turns no more than 4300 digits into a number.)
    """
    digits = text.strip()
    significant = digits.lstrip('0')
    if not (text.isascii() and digits.isdigit()) or len(significant) > max_digits:
        return None
    return int(significant or '0')
