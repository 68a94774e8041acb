"""Images whose file is found gone (removed by hand): unlisted, or said to stay."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .. import logs
from ..errors import (
    ImageNotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)

# Said as the store's: what a user reads of the images it serves.
logger = logging.getLogger('asgilook.store')

# An image whose file is gone and that cannot be unlisted is said at most
# this often, for each cause (a full disk, a storage that cannot be written).
STAYS_LISTED_LOG_INTERVAL = 60.0


class GoneFiles:
    """Unlist each image whose file is found gone, and say so."""

    def __init__(self, where: str, clock: Callable[[], float]) -> None:
        self._where = where
        # An image that stays listed is said once a minute for each cause.
        self._stays_listed = {
            cause: logs.Throttle(STAYS_LISTED_LOG_INTERVAL, clock)
            for cause in (StorageFullError, StorageUnavailableError)
        }

    async def unlist(
        self, image_id: str, delete: Callable[[], Awaitable[None]]
    ) -> None:
        """Unlist an image through delete; a storage that fails leaves it listed."""
        try:
            await delete()
        except ImageNotFoundError:
            # As expected: the row went, without the file.
            pass
        except StorageError as ex:
            self._said_to_stay(image_id, ex)
            return
        logger.warning(
            'unlisted image %s: its file is gone from %s', image_id, self._where
        )

    def _said_to_stay(self, image_id: str, ex: StorageError) -> None:
        """Say that an image whose file is gone cannot be unlisted now, and when."""
        full = isinstance(ex, StorageFullError)
        more = self._stays_listed[
            StorageFullError if full else StorageUnavailableError
        ].take()
        if more is None:
            return
        logger.warning(
            'image %s stays listed though its file is gone from %s: %s to '
            'unlist it now; the first request for it once %s unlists it, '
            'as does python -m asgilook reindex%s',
            image_id,
            self._where,
            'its disk has no room' if full else 'its storage cannot be written',
            'there is room' if full else 'it can be written',
            more,
        )
