"""The shell examples of the documentation's pages, read as a reader sees them."""

import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
# A block of commands, and the block of what they print, if the page shows it.
EXAMPLE = re.compile(r'```console\n(.*?)```\n(?:\n```text\n(.*?)```\n)?', re.S)
# What differs from one run to the next: dates, ids, delete tokens.
VARYING = [
    (re.compile(r'\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT'), '<date>'),
    (re.compile(r'[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}'), '<id>'),
    (re.compile(r'"delete_token": "[\w-]+"'), '"delete_token": "<token>"'),
]


@dataclasses.dataclass
class Example:
    commands: str
    output: str | None


def section(page: str, heading: str) -> str:
    """Return the text under heading (## level) of a file of the repository."""
    text = (ROOT / page).read_text()
    return text.split(f'\n## {heading}\n', 1)[1].split('\n## ', 1)[0]


def examples(text: str) -> list[Example]:
    return [Example(*match.groups()) for match in EXAMPLE.finditer(text)]


def steady(output: str) -> str:
    """Return output with what differs between runs replaced by placeholders."""
    for pattern, placeholder in VARYING:
        output = pattern.sub(placeholder, output)
    # The blank line that ends a head curl prints.
    return output.rstrip('\n')
