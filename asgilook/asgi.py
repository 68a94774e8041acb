"""The application that `uvicorn asgilook.asgi:app` serves, built when it starts.

Importing this module reads no setting: `create_served_app()` (the Falcon
app of `create_app()`, behind the gate and the cache's fast path) runs at
the server's lifespan startup (see `serving/startup.py`), where a bad
setting stops the server with one line instead of a traceback in every
worker.
"""

from .app import create_served_app
from .serving.startup import AppAtStartup

app = AppAtStartup(create_served_app)
