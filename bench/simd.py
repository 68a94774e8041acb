"""Pillow-SIMD against Pillow: asgilook's thumbnail renders and uploads, one run.

Run from the repository root: `python -m bench.simd --simd-venv /tmp/simd-venv`.

Pillow-SIMD replaces the `PIL` package, so the two cannot share a virtual
environment: the Pillow side is this interpreter's, the Pillow-SIMD side the
one of --simd-venv. When that directory has no bin/python, it is built first
(a few minutes; needs a C compiler and `apt-get install libjpeg-dev
zlib1g-dev`): asgilook installed editable, then Pillow removed and Pillow-SIMD
built from its sdist with `CC="cc -mavx2"`, as Pillow-SIMD's README says.

Each side runs in a worker process of its own (`python -m bench.simd
--worker`), on one thread, calling what asgilook calls: `convert.resize` on a
stored 1920x1080 photo-like JPEG for each size of its ladder (the cold
thumbnail) and `convert.to_jpeg` on a 1920x1080 JPEG and PNG (the upload); and,
off asgilook's path, a LANCZOS resize of the whole picture, which shows what
Pillow-SIMD speeds up. The sides take turns; each measure's best round is kept.
It prints the machine, both PILs, each rate, the ratio SIMD/Pillow, and each
thumbnail's PSNR under each against a full decode resized with LANCZOS (the
README's quality bar: 35 dB).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import PIL
import PIL.features
import PIL.Image

from asgilook.config import Config
from asgilook.imaging import convert

from . import figures, pictures

ROOT = Path(__file__).resolve().parent.parent
PHOTO_SIZE = (1920, 1080)
QUALITY = Config.DEFAULT_JPEG_QUALITY
MAX_PIXELS = Config.DEFAULT_MAX_IMAGE_PIXELS
# What a Pillow-SIMD build reports and the benchmark's JPEG and PNG need.
_FEATURES = ('jpg', 'zlib', 'libjpeg_turbo', 'libtiff', 'webp', 'freetype2')
_TABLE = figures.Columns((37, 9, 9, 11, 11, 9))
_HEADINGS = ('Pillow/s', 'SIMD/s', 'SIMD/Pillow', 'PSNR Pillow', 'PSNR SIMD')


# -- The worker: one PIL, answering one JSON line for each request line.


def thumbnail_psnr(path: str, size: tuple[int, int]) -> float:
    """The quality bar: the thumbnail against a full decode resized with LANCZOS.

    The reference goes through JPEG at the same quality, so that what is
    measured is how the thumbnail was scaled (test_thumbnails.py).
    """
    thumbnail = pictures.decode(convert.resize(path, size, QUALITY))
    with PIL.Image.open(path) as stored:
        reference = stored.convert('RGB').resize(size, PIL.Image.Resampling.LANCZOS)
    reference = pictures.decode(pictures.encode(reference, 'JPEG', quality=QUALITY))
    return pictures.psnr(thumbnail, reference)


def about() -> dict[str, Any]:
    """Which PIL this is: version, distributions installed, libraries built in."""
    installed: dict[str, str | None] = {}
    for name in ('pillow', 'pillow-simd'):
        try:
            installed[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed[name] = None
    features = {name: PIL.features.version(name) for name in _FEATURES}
    return {'version': PIL.__version__, 'installed': installed, 'features': features}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request of the benchmark's process."""
    if request['op'] == 'about':
        return about()
    path, size = request['path'], tuple(request['size'])
    if request['op'] == 'psnr':
        return {'psnr': thumbnail_psnr(path, size)}
    call: Callable[[], object] = functools.partial(convert.resize, path, size, QUALITY)
    if request['op'] == 'upload':
        call = functools.partial(upload, Path(path).read_bytes())
    elif request['op'] == 'lanczos':
        picture = pictures.decode(Path(path).read_bytes())
        call = functools.partial(picture.resize, size, PIL.Image.Resampling.LANCZOS)
    return {'rate': figures.calls_per_second(call, request['seconds'])}


def upload(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """What asgilook does with an upload held in memory."""
    return convert.to_jpeg(io.BytesIO(data), MAX_PIXELS, QUALITY)


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer each JSON request line with a JSON line, until the input ends."""
    for line in requests:
        answers.write(json.dumps(answer(json.loads(line))) + '\n')
        answers.flush()


# -- The benchmark's process: the two workers, taking turns.


class Worker:
    """A worker process under one Python (so one PIL), asked one thing at a time."""

    def __init__(self, python: Path, name: str) -> None:
        self.name = name
        self.python = python
        self.process = subprocess.Popen(
            [str(python), '-m', 'bench.simd', '--worker'],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({'op': op, **fields}) + '\n')
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f'the {self.name} worker ({self.python}) exited')
        found: dict[str, Any] = json.loads(line)
        return found

    def rate(self, request: dict[str, Any], seconds: float) -> float:
        found: float = self.ask(**request, seconds=seconds)['rate']
        return found

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.__exit__(None, None, None)  # Its input closed, it ends.


def build_simd_venv(venv: Path) -> Path:
    """Return the python of venv, first built with Pillow-SIMD if it has none."""
    python = venv / 'bin' / 'python'
    if python.exists():
        return python
    print(f'building Pillow-SIMD from its sdist in {venv}', file=sys.stderr)
    pip = [str(python), '-m', 'pip', 'install', '-q']
    env = dict(os.environ, CC='cc -mavx2')
    steps = [
        [sys.executable, '-m', 'venv', str(venv)],
        [*pip, '-e', str(ROOT)],
        [str(python), '-m', 'pip', 'uninstall', '-q', '-y', 'pillow'],
        [*pip, '--no-binary', ':all:', 'pillow-simd'],
    ]
    for step in steps:
        if subprocess.run(step, env=env, check=False).returncode:
            sys.exit(f'failed: {" ".join(step)} (needs cc, libjpeg-dev, zlib1g-dev)')
    return python


def check(pillow: dict[str, Any], simd: dict[str, Any]) -> None:
    """Exit unless one side is Pillow alone and the other Pillow-SIMD alone."""
    if pillow['installed']['pillow-simd'] or not pillow['installed']['pillow']:
        sys.exit(f'this interpreter should have Pillow, not Pillow-SIMD: {pillow}')
    if simd['installed']['pillow'] or '.post' not in simd['version']:
        sys.exit(f'the --simd-venv should have Pillow-SIMD alone: {simd}')
    for side in (pillow, simd):
        if not (side['features']['jpg'] and side['features']['zlib']):
            sys.exit(f'a PIL without JPEG or zlib: {side}')


def describe(name: str, side: dict[str, Any], python: Path) -> str:
    built = ' '.join(
        f'{feature} {version}'
        for feature, version in side['features'].items()
        if version and feature != 'jpg'
    )
    return f'{name:<12} PIL {side["version"]:<13} {built}  ({python})'


@contextlib.contextmanager
def inputs() -> Iterator[dict[str, Path]]:
    """The stored JPEG (as asgilook stores an upload) and the two uploads."""
    upload = pictures.photo(PHOTO_SIZE)
    stored, _ = convert.to_jpeg(io.BytesIO(upload), MAX_PIXELS, QUALITY)
    with PIL.Image.open(io.BytesIO(upload)) as image:
        png = pictures.encode(image.convert('RGB'), 'PNG')
    with tempfile.TemporaryDirectory(prefix='asgilook-simd-') as tmp:
        files = {
            'stored': Path(tmp, 'stored.jpeg'),
            'JPEG': Path(tmp, 'upload.jpeg'),
            'PNG': Path(tmp, 'upload.png'),
        }
        for path, data in zip(files.values(), (stored, upload, png), strict=True):
            path.write_bytes(data)
        yield files


def tasks(files: dict[str, Path]) -> list[tuple[str, dict[str, Any]]]:
    """What is measured: a label and a request for each."""
    found = []
    for size in pictures.ladder(PHOTO_SIZE, Config.DEFAULT_MIN_THUMB_SIZE):
        factor = PHOTO_SIZE[0] // size[0]
        scale = f'decoder 1/{min(factor, 8)}' + (' + LANCZOS' if factor > 8 else '')
        request = {'op': 'render', 'path': str(files['stored']), 'size': size}
        found.append((f'render {size[0]}x{size[1]} ({scale})', request))
    for kind in ('JPEG', 'PNG'):
        request = {'op': 'upload', 'path': str(files[kind]), 'size': PHOTO_SIZE}
        found.append((f'upload {kind} {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}', request))
    # Not on asgilook's path: what Pillow-SIMD speeds up, a resampling of the
    # whole picture, which the decoder's scaling spares asgilook.
    request = {'op': 'lanczos', 'path': str(files['stored']), 'size': (960, 540)}
    return [*found, ('(LANCZOS 1920x1080 to 960x540)', request)]


def measure(
    sides: tuple[Worker, Worker],
    requests: list[dict[str, Any]],
    rounds: int,
    seconds: float,
) -> list[tuple[float, float]]:
    """Each request's best rate (calls/s) on each side, the sides taking turns."""
    measures = [
        functools.partial(side.rate, request, seconds)
        for request in requests
        for side in sides
    ]
    best = figures.best_of(measures, rounds, key=float)
    return list(zip(best[::2], best[1::2], strict=True))


def report(
    labels: list[str], rates: list[tuple[float, float]], quality: list[list[str]]
) -> None:
    print(_TABLE.line('', *_HEADINGS))
    for label, (pillow, simd), dbs in zip(labels, rates, quality, strict=True):
        ratio = figures.ratio(simd, pillow)
        print(_TABLE.line(label, f'{pillow:.1f}', f'{simd:.1f}', ratio, *dbs))


def psnrs(sides: tuple[Worker, Worker], request: dict[str, Any]) -> list[str]:
    """The thumbnail's PSNR (dB) on each side; none for an upload."""
    if request['op'] != 'render':
        return ['-', '-']
    return [f'{side.ask(**{**request, "op": "psnr"})["psnr"]:.1f}' for side in sides]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m bench.simd', description=__doc__)
    parser.add_argument(
        '--simd-venv',
        type=Path,
        default=Path('/tmp/simd-venv'),
        help='the Pillow-SIMD virtual environment, built there if absent',
    )
    parser.add_argument('--rounds', type=int, default=5, help='turns of each side')
    parser.add_argument('--seconds', type=float, default=1.0, help='of each measure')
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        serve(sys.stdin, sys.stdout)
        return
    simd_python = build_simd_venv(args.simd_venv)
    print(figures.machine())
    with (
        inputs() as files,
        Worker(Path(sys.executable), 'Pillow') as pillow,
        Worker(simd_python, 'Pillow-SIMD') as simd,
    ):
        sides = (pillow, simd)
        abouts = [side.ask('about') for side in sides]
        check(*abouts)
        for side, found in zip(sides, abouts, strict=True):
            print(describe(side.name, found, side.python))
        labels, requests = zip(*tasks(files), strict=True)
        quality = [psnrs(sides, request) for request in requests]
        rates = measure(sides, list(requests), args.rounds, args.seconds)
    print(f'best of {args.rounds} rounds of {args.seconds} s, one thread each\n')
    report(list(labels), rates, quality)


if __name__ == '__main__':
    main()
