"""An app's lifespan and requests, driven as a server drives them."""

import asyncio
import json

from asgilook.app import create_served_app
from asgilook.config import Config

BAD_SETTING = {'ASGI_LOOK_MIN_THUMB_SIZE': 'abc'}


def bad_setting():
    return create_served_app(Config(BAD_SETTING))


async def lifespan(app, answers=('lifespan.startup', 'lifespan.shutdown')):
    """Run app's lifespan as a server does; return what it sent."""
    events = [{'type': event} for event in answers]
    sent = []

    async def receive():
        return events.pop(0)

    async def send(event):
        sent.append(event)

    scope = {'type': 'lifespan', 'asgi': {'version': '3.0'}, 'state': {}}
    await app(scope, receive, send)
    return sent


async def request(app, path='/images', kind='http'):
    """Send one GET to app as a server that runs no lifespan does."""
    scope = {
        'type': kind,
        'asgi': {'version': '3.0', 'spec_version': '2.3'},
        'http_version': '1.1',
        'method': 'GET',
        'scheme': 'http' if kind == 'http' else 'ws',
        'path': path,
        'raw_path': path.encode(),
        'query_string': b'',
        'root_path': '',
        'headers': [(b'host', b'localhost')],
        'client': ('127.0.0.1', 50000),
        'server': ('127.0.0.1', 8000),
    }
    events = [{'type': 'http.request', 'body': b'', 'more_body': False}]
    sent = []

    async def receive():
        if events:
            return events.pop(0)
        await asyncio.Event().wait()  # A client that stays.

    async def send(event):
        sent.append(event)

    await app(scope, receive, send)
    return sent


def status_and_json(sent):
    body = b''.join(event.get('body', b'') for event in sent[1:])
    return sent[0]['status'], json.loads(body)
