"""Peak memory and time of concurrent maximum-size uploads to a live uvicorn.

Run from the repository root:

    python -m bench.upload_memory

For each concurrency level a fresh `uvicorn asgilook.asgi:app` (against its own
redis-server) receives that many uploads of one maximum-size JPEG at once; the
server's peak RSS (VmHWM) is read from /proc. The baseline is the same server
with exactly image_workers uploads in flight (every worker busy), measured in
the same run; the ratios show that peak memory follows image_workers, not the
number of requests in flight.
"""

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import PIL.Image
import PIL.ImageChops

from asgilook.config import Config
from tests import servers

BYTES_PER_PIXEL_BOUND = 12


def max_size_jpeg(pixels: int) -> bytes:
    """A 3:2 photo-like JPEG of at most `pixels` pixels: gradients and detail."""
    width = int((pixels * 3 / 2) ** 0.5)
    height = pixels // width
    small = (width // 16, height // 16)
    red = PIL.Image.linear_gradient('L').resize(small)
    green = red.transpose(PIL.Image.Transpose.ROTATE_90).resize(small)
    blue = PIL.Image.effect_noise(small, 64)
    picture = PIL.Image.merge('RGB', (red, green, blue)).resize((width, height))
    grain = PIL.Image.effect_noise((width, height), 24).convert('RGB')
    picture = PIL.ImageChops.add(picture, grain, scale=1.5)
    output = io.BytesIO()
    picture.save(output, 'JPEG', quality=85)
    return output.getvalue()


def _status(pid: int, field: str) -> int:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


async def _upload_at_once(base_url: str, body: bytes, count: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one() -> float:
            started = time.perf_counter()
            resp = await client.post('/images', content=body)
            resp.raise_for_status()
            return time.perf_counter() - started

        return await asyncio.gather(*(one() for _ in range(count)))


def measure(concurrency: int, body: bytes, redis_url: str, workdir: Path) -> dict:
    storage = workdir / f'images-{concurrency}'
    process = servers.start_uvicorn(storage, redis_url, servers.free_port())
    try:
        base_url = f'http://127.0.0.1:{process.args[process.args.index("--port") + 1]}'
        idle = _status(process.pid, 'VmRSS')
        started = time.perf_counter()
        latencies = asyncio.run(_upload_at_once(base_url, body, concurrency))
        wall = time.perf_counter() - started
        peak = _status(process.pid, 'VmHWM')
    finally:
        servers.stop(process)
    return {
        'concurrency': concurrency,
        'idle': idle,
        'peak': peak,
        'wall': wall,
        'per_upload': wall / concurrency,
        'p50': statistics.median(latencies),
        'max': max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--levels', default='8,32', help='concurrency levels after the baseline'
    )
    args = parser.parse_args()
    config = Config()
    levels = [config.image_workers] + [int(n) for n in args.levels.split(',')]

    body = max_size_jpeg(config.max_image_pixels)
    with PIL.Image.open(io.BytesIO(body)) as image:
        size = image.size
    print(
        f'upload: {size[0]}x{size[1]} JPEG ({size[0] * size[1]:,} pixels, '
        f'{len(body) / 2**20:.1f} MiB); image_workers={config.image_workers}, '
        f'cpus={os.cpu_count()}'
    )

    mib = 2**20
    with tempfile.TemporaryDirectory() as tmp, servers.redis_server(tmp) as redis_url:
        results = [measure(level, body, redis_url, Path(tmp)) for level in levels]

    baseline = results[0]
    bound = baseline['idle'] + (
        config.image_workers * config.max_image_pixels * BYTES_PER_PIXEL_BOUND
    )
    print(
        f'{"in flight":>9} {"idle RSS":>9} {"peak RSS":>9} {"vs base":>7} '
        f'{"s/upload":>9} {"p50 s":>7} {"max s":>7}'
    )
    for result in results:
        print(
            f'{result["concurrency"]:>9} {result["idle"] / mib:>8.0f}M '
            f'{result["peak"] / mib:>8.0f}M {result["peak"] / baseline["peak"]:>7.2f} '
            f'{result["per_upload"]:>9.2f} {result["p50"]:>7.2f} {result["max"]:>7.2f}'
        )
    worst = max(result['peak'] for result in results)
    print(
        f'bound: idle + image_workers x max_image_pixels x '
        f'{BYTES_PER_PIXEL_BOUND} B = {bound / mib:.0f}M; '
        f'worst peak {worst / mib:.0f}M ({worst / bound:.2f} of the bound)'
    )


if __name__ == '__main__':
    main()
