"""The application that `uvicorn asgilook.asgi:app` serves, built when it starts.

Importing this module reads no setting: `create_app()` runs at the server's
lifespan startup (see `startup.AppAtStartup`), where a bad setting stops the
server with one line instead of a traceback in every worker.
"""

from .app import create_app
from .serving.startup import AppAtStartup

app = AppAtStartup(create_app)
