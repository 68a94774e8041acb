"""asgilook: an image-sharing HTTP API on Falcon ASGI."""
