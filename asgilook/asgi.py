"""The application that `uvicorn asgilook.asgi:app` serves."""

from .app import create_app

app = create_app()
