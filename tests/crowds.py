"""Crowds asking for one cold thumbnail: its renders counted and held, its followers."""

import asyncio
import threading

from .streams import WAIT


class Renders:
    """The thumbnails rendered in the test's threads, counted; held while told."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self._begun = threading.Condition()
        self._go = threading.Event()
        self._go.set()

    def __len__(self) -> int:
        return len(self.sizes)

    def hold(self) -> None:
        """Keep the renders that begin from ending until let_go()."""
        self._go.clear()

    def let_go(self) -> None:
        self._go.set()

    async def begun(self, count: int) -> None:
        """Return once count renders have begun, in all."""

        def wait() -> bool:
            with self._begun:
                return self._begun.wait_for(lambda: len(self) >= count, WAIT)

        assert await asyncio.to_thread(wait), f'{count} renders did not begin'

    def resize(self, resize, *args, **kwargs):
        with self._begun:
            self.sizes.append(args[1])
            self._begun.notify_all()
        assert self._go.wait(WAIT), 'the test never let the render go'
        return resize(*args, **kwargs)


class Followers:
    """Requests that wait for the answer another request of their process computes."""

    def __init__(self) -> None:
        self.count = 0
        self._joined = asyncio.Condition()

    async def joined(self) -> None:
        async with self._joined:
            self.count += 1
            self._joined.notify_all()

    async def gathered(self, count: int) -> None:
        """Return once count requests follow, in all."""
        async with asyncio.timeout(WAIT), self._joined:
            await self._joined.wait_for(lambda: self.count >= count)


async def together(requests, renders, followers, following: int) -> list:
    """Send requests at once; the render they need ends once `following` wait for it."""
    begun, followed = len(renders) + 1, followers.count + following
    renders.hold()
    crowd = asyncio.gather(*requests)
    await renders.begun(begun)
    await followers.gathered(followed)
    renders.let_go()
    return await crowd
