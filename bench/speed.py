"""Every path of asgilook against the ceiling of this machine, in one run.

Run from the repository root (needs `wrk`: apt-get install wrk):

    python -m bench.speed

It starts its own redis-server, `uvicorn asgilook.asgi:app` and, under the same
uvicorn (1 worker, uvloop, httptools, no access log), the bare ASGI app of
`bench/bare.py` answering the same bytes. Its 20 images are uploaded; the
images of the cold thumbnails are hard links to the first, listed by a reindex
(`bench.filling.reindexed`, what `python -m asgilook reindex` runs) while the
server runs, after the cached paths are measured. Load comes from wrk on loopback
(`-t2 -c32`, a few seconds a path). For the cold thumbnail and the upload, the
ceiling is Pillow called in this process on 2 threads doing the least work of
that path. It prints, for each path, asgilook's rate, the ceiling's rate and
their ratio (measured in this run: absolute rates drift between runs), the
latency percentiles and the server's peak RSS.
"""

import argparse
import asyncio
import concurrent.futures
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter

from asgilook.config import Config
from asgilook.files import file_name

from . import filling, processes

ROUNDS = 3
UVICORN_FLAGS = ('--loop', 'uvloop', '--http', 'httptools', '--workers', '1')
TARGETS = {
    'cached thumbnail': 0.8,
    'GET /images (20, cached)': 0.8,
    'full image': 0.8,
    'cold thumbnail': 0.9,
    'upload': 0.9,
}
# Each request of the cold run asks for a thumbnail nobody asked for before.
_COLD_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = 0
function setup(thread)
  thread:set("next", threads)
  threads = threads + 1
end
function request()
  next = next + 2
  return wrk.format(nil, paths[next % #paths + 1])
end
"""
_POST_SCRIPT = """
local source = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = source:read("*a")
source:close()
"""


def photo(size: tuple[int, int] = (1920, 1080), seed: int = 1) -> bytes:
    """Return a JPEG (quality 90) of a photo-like scene: light, edges, grain."""
    rng = random.Random(seed)
    width, height = size
    sky = PIL.Image.linear_gradient('L').resize(size).convert('RGB')
    scene = PIL.Image.merge(
        'RGB',
        [
            band.point(lambda v, k=k: int(v * k))
            for band, k in zip(sky.split(), (0.55, 0.75, 1.0), strict=True)
        ],
    )
    draw = PIL.ImageDraw.Draw(scene)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(20, height // 4)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    scene = scene.filter(PIL.ImageFilter.GaussianBlur(3))
    grain = PIL.Image.frombytes('L', size, rng.randbytes(width * height))
    scene = PIL.Image.blend(scene, grain.convert('RGB'), 0.08)
    output = io.BytesIO()
    scene.save(output, 'JPEG', quality=90)
    return output.getvalue()


def start_uvicorn(
    storage: Path,
    redis_url: str,
    port: int,
    app: str = 'asgilook.asgi:app',
    ready_path: str = '/images',
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start uvicorn serving app in a session of its own; return once it answers."""
    command = [sys.executable, '-m', 'uvicorn', app, '--host', '127.0.0.1']
    command += ['--port', str(port), '--no-access-log', *UVICORN_FLAGS]
    process = subprocess.Popen(
        command,
        env=dict(
            os.environ,
            ASGI_LOOK_STORAGE_PATH=str(storage),
            ASGI_LOOK_REDIS_HOST=redis_url,
            **(env or {}),
        ),
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not _answers(f'http://127.0.0.1:{port}{ready_path}'):
        if process.poll() is not None or time.monotonic() > deadline:
            processes.stop(process)
            raise RuntimeError(f'uvicorn serving {app} on {port} did not start')
        time.sleep(0.05)
    return process


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def descendants(pid: int) -> list[int]:
    """The processes pid started, and those they started, as /proc tells now."""
    found, frontier = [], [pid]
    while frontier:
        frontier = [
            child for parent in frontier for child in processes.children(parent)
        ]
        found += frontier
    return found


def wrk(url: str, seconds: float, connections: int, script: Path | None = None):
    """Return requests/s, p50 and p99 latency (s), and requests made, of wrk."""
    command = ['wrk', '-t2', f'-c{connections}', f'-d{seconds}s', '--latency', url]
    if script is not None:
        command[1:1] = ['-s', str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if 'Non-2xx' in output or 'Socket errors' in output:
        raise RuntimeError(f'wrk saw failed requests:\n{output}')
    rate = float(re.search(r'Requests/sec:\s+([\d.]+)', output)[1])
    requests = int(re.search(r'(\d+) requests in', output)[1])
    return rate, _percentile(output, '50'), _percentile(output, '99'), requests


def _percentile(output: str, which: str) -> float:
    value, unit = re.search(
        rf'^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$', output, re.M
    ).groups()
    return float(value) * {'us': 1e-6, 'ms': 1e-3, 's': 1.0}[unit]


def best_of(ours, ceiling) -> tuple:
    """Measure asgilook and its ceiling in turn, ROUNDS times; keep each's best.

    The machine's speed drifts within a run; taking turns gives both sides
    the same weather, and the best of each the same luck.
    """
    mine, theirs = [], []
    for _ in range(ROUNDS):
        mine.append(ours())
        theirs.append(ceiling())
    return max(mine, key=lambda result: result[0]), max(
        theirs, key=lambda result: result[0]
    )


def pillow_rate(work, data: bytes, seconds: float) -> float:
    """Calls per second of work(data) on 2 threads, for about `seconds`."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(work, [data] * 4))  # warm up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            list(pool.map(work, [data] * 8))
            done += 8
        return done / (time.perf_counter() - started)


def pillow_thumbnail(size: tuple[int, int], quality: int):
    def work(data: bytes) -> bytes:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.draft('RGB', size)
            image.thumbnail(size)
            output = io.BytesIO()
            image.save(output, 'JPEG', quality=quality)
        return output.getvalue()

    return work


def pillow_convert(quality: int):
    def work(data: bytes) -> bytes:
        with PIL.Image.open(io.BytesIO(data)) as image:
            output = io.BytesIO()
            image.convert('RGB').save(output, 'JPEG', quality=quality)
        return output.getvalue()

    return work


def add_copies(
    storage: Path, source: Path, image: dict, count: int, listed: int
) -> list[str]:
    """Store `count` more images with the bytes of one (hard links); their ids.

    They are listed by a reindex, as files copied in by hand are, while the
    server runs; `listed` is how many images the catalog listed before.
    """
    ids = []
    length = source.stat().st_size
    for _ in range(count):
        image_id = str(uuid.uuid4())
        os.link(source, storage / file_name(image_id, tuple(image['size']), length))
        ids.append(image_id)
    report = asyncio.run(filling.reindexed(storage))
    if report.listed != listed + count or report.ignored:
        raise RuntimeError(f'the reindex did not list the copies: {report}')
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=int, default=5)
    parser.add_argument('--connections', type=int, default=32)
    parser.add_argument(
        '--cold', type=int, default=2000, help='cold thumbnails a round'
    )
    args = parser.parse_args()
    if shutil.which('wrk') is None:
        sys.exit('bench.speed needs wrk on PATH: sudo apt-get install wrk')

    quality = Config().jpeg_quality
    upload = photo((1920, 1080))
    rows = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        processes.redis_server(Path(tmp)) as redis_port,
    ):
        tmp = Path(tmp)
        redis_url = f'redis://127.0.0.1:{redis_port}'
        storage = tmp / 'images'
        port, bare_port = processes.free_port(), processes.free_port()
        server = start_uvicorn(storage, redis_url, port)
        base = f'http://127.0.0.1:{port}'
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                images = [
                    http.post('/images', content=photo((1920, 1080), seed)).json()
                    for seed in range(1, 21)
                ]
                first = images[0]
                thumbnail = first['thumbnails'][0]
                stored = storage / file_name(
                    first['id'],
                    tuple(first['size']),
                    len(http.get(first['image']).content),
                )
                for uri in ['/images', thumbnail, first['image']]:
                    while http.get(uri).headers['X-ASGILook-Cache'] != 'Hit':
                        pass
                (tmp / 'thumbnail').write_bytes(http.get(thumbnail).content)
                (tmp / 'list').write_bytes(http.get('/images').content)

            bare = start_uvicorn(
                storage,
                redis_url,
                bare_port,
                app='bench.bare:app',
                ready_path='/list',
                env={
                    'BENCH_THUMBNAIL': str(tmp / 'thumbnail'),
                    'BENCH_LIST': str(tmp / 'list'),
                    'BENCH_IMAGE': str(stored),
                },
            )
            bare_base = f'http://127.0.0.1:{bare_port}'
            try:
                for label, ours, theirs in [
                    ('cached thumbnail', thumbnail, '/thumbnail'),
                    ('GET /images (20, cached)', '/images', '/list'),
                    ('full image', first['image'], '/image'),
                ]:
                    rows[label] = best_of(
                        lambda ours=ours: wrk(
                            base + ours, args.seconds, args.connections
                        ),
                        lambda theirs=theirs: wrk(
                            bare_base + theirs, args.seconds, args.connections
                        ),
                    )
            finally:
                processes.stop(bare)

            ids = add_copies(storage, stored, first, args.cold * ROUNDS, len(images))
            size = tuple(map(int, thumbnail.rsplit('/', 1)[1][:-5].split('x')))
            (tmp / 'cold.lua').write_text(_COLD_SCRIPT)
            rounds = iter(range(ROUNDS))

            def cold() -> tuple:
                # Thumbnails no round has asked for.
                first = next(rounds) * args.cold
                paths = [
                    f'/thumbnails/{i}/{size[0]}x{size[1]}.jpeg'
                    for i in ids[first : first + args.cold]
                ]
                (tmp / 'paths').write_text('\n'.join(paths) + '\n')
                os.environ['BENCH_PATHS'] = str(tmp / 'paths')
                result = wrk(f'{base}/', args.seconds, 8, tmp / 'cold.lua')
                if result[3] > len(paths):
                    raise RuntimeError('not enough cold thumbnails: raise --cold')
                return result

            work = pillow_thumbnail(size, quality)
            data = stored.read_bytes()
            rows['cold thumbnail'] = best_of(
                cold, lambda: (pillow_rate(work, data, args.seconds), None, None)
            )

            (tmp / 'upload.jpeg').write_bytes(upload)
            (tmp / 'post.lua').write_text(_POST_SCRIPT)
            os.environ['BENCH_BODY'] = str(tmp / 'upload.jpeg')
            rows['upload'] = best_of(
                lambda: wrk(
                    base + '/images', args.seconds, args.connections, tmp / 'post.lua'
                ),
                lambda: (
                    pillow_rate(pillow_convert(quality), upload, args.seconds),
                    None,
                    None,
                ),
            )
            rss = processes.peak_rss_mib(server.pid)
            helpers = [processes.peak_rss_mib(pid) for pid in descendants(server.pid)]
        finally:
            processes.stop(server)

    print(
        f'\nasgilook vs the ceiling, {os.cpu_count()} CPUs, {sys.platform}, '
        f'wrk -t2 -c{args.connections} -d{args.seconds:g}s'
    )
    print(
        f'{"path":26} {"asgilook/s":>11} {"ceiling/s":>10} {"ratio":>6} '
        f'{"target":>6} {"p50":>8} {"p99":>8}'
    )
    for label, ((rate, p50, p99, *_), (ceiling, *_)) in rows.items():
        ratio = rate / ceiling
        mark = 'ok' if ratio >= TARGETS[label] else 'BELOW'
        print(
            f'{label:26} {rate:>11.1f} {ceiling:>10.1f} {ratio:>6.2f} '
            f'{TARGETS[label]:>6} {p50 * 1000:>6.1f}ms {p99 * 1000:>6.1f}ms {mark}'
        )
    print(
        f'peak RSS of the asgilook server: {rss:.0f} MiB, and of the '
        f'{len(helpers)} processes it started (renders and their fork server): '
        f'{sum(helpers):.0f} MiB'
    )


if __name__ == '__main__':
    main()
