"""Who may delete an image: whoever uploaded it, holding its delete token.

`POST /images` answers a `delete_token` for the new image, in its 201 body
only; `DELETE /images/{id}.jpeg` takes it as `Authorization: Bearer <token>`.
A token is the service key's signature (keyed BLAKE2b, a MAC as HMAC is)
of the image id, for the purpose of deleting: unguessable, good for that
image alone, and checked by every worker and after restarts with no table
of tokens. Another key (ASGI_LOOK_SECRET changed, or `.service-key`
replaced) makes every earlier token invalid.
"""

from __future__ import annotations

import base64
import hmac
import uuid
from typing import Any

import falcon.asgi

from ..errors import DeleteTokenInvalidError, DeleteTokenMissingError
from .signing import ServiceKey

# The purpose the service key signs delete tokens for (see ServiceKey.sign).
PURPOSE = b'asgilook-delete'


class DeleteTokens:
    """Issue and check the delete tokens of images."""

    def __init__(self, key: ServiceKey) -> None:
        self._key = key

    async def issue(self, image_id: str) -> str:
        """Return the delete token of an image: 43 characters of base64url."""
        # Loaded at start-up; a server that runs no lifespan loads it here.
        await self._key.load()
        signature = self._key.sign(PURPOSE, image_id.encode())
        return base64.urlsafe_b64encode(signature).rstrip(b'=').decode()

    async def valid(self, token: str, image_id: str) -> bool:
        """Return whether token is the delete token of image_id (constant time).

        Only as issued: another spelling of the same signature (padded, with
        other characters in it, another alphabet) is no token.
        """
        expected = await self.issue(image_id)
        return hmac.compare_digest(token.encode(), expected.encode())


async def require_delete_token(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    resource: Any,
    params: dict[str, Any],
) -> None:
    """A `falcon.before` hook: let only the holder of the image's token through.

    It runs before the responder looks anything up, so that a refusal says
    nothing of whether the image exists: 401 without a bearer token, 403
    with one that is not this image's.
    """
    scheme, _, token = (req.get_header('Authorization') or '').partition(' ')
    token = token.strip()
    if scheme.lower() != 'bearer' or not token:
        raise DeleteTokenMissingError
    image_id: uuid.UUID = params['image_id']
    tokens: DeleteTokens = resource.delete_tokens
    if not await tokens.valid(token, str(image_id)):
        raise DeleteTokenInvalidError
