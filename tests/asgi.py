"""Drive the ASGI app directly, as a server does, for what TestClient cannot send."""

import json


async def post_chunked(app, path: str, chunks, headers=()) -> tuple[int, dict, int]:
    """POST chunks with no Content-Length, as a chunked upload arrives.

    Return the status, the JSON body and how many chunks the app asked for.
    """
    scope = {
        'type': 'http',
        'asgi': {'version': '3.0', 'spec_version': '2.3'},
        'http_version': '1.1',
        'method': 'POST',
        'scheme': 'http',
        'path': path,
        'raw_path': path.encode(),
        'query_string': b'',
        'root_path': '',
        'headers': [(name.lower().encode(), value.encode()) for name, value in headers],
        'client': ('127.0.0.1', 50000),
        'server': ('127.0.0.1', 8000),
    }
    pending = list(chunks)
    pulled = 0

    async def receive():
        nonlocal pulled
        if pulled < len(pending):
            pulled += 1
            more = pulled < len(pending)
            return {
                'type': 'http.request',
                'body': pending[pulled - 1],
                'more_body': more,
            }
        return {'type': 'http.disconnect'}

    sent = {'status': None, 'body': b''}

    async def send(event):
        if event['type'] == 'http.response.start':
            sent['status'] = event['status']
        elif event['type'] == 'http.response.body':
            sent['body'] += event.get('body', b'')

    await app(scope, receive, send)
    return sent['status'], json.loads(sent['body'] or b'null'), pulled
