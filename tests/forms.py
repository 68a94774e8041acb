"""multipart/form-data bodies, as browsers and curl -F send them."""

BOUNDARY = '----asgilookFormBoundary7MA4YWxkTrZu0gW'
CONTENT_TYPE = f'multipart/form-data; boundary={BOUNDARY}'


def field(name: str, value: bytes, filename: str | None = None, content_type=None):
    """One part of a form: a file part if it has a filename, else a field."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = f'Content-Disposition: {disposition}\r\n'
    if content_type is not None:
        headers += f'Content-Type: {content_type}\r\n'
    return headers.encode() + b'\r\n' + value


def form(*parts: bytes) -> bytes:
    """A whole form of parts (made by field)."""
    dash = b'--' + BOUNDARY.encode()
    return (
        b''.join(dash + b'\r\n' + part + b'\r\n' for part in parts) + dash + b'--\r\n'
    )


def image_form(data: bytes, *others: bytes) -> bytes:
    """The form of an HTML page or curl -F image=@photo: a file part named image."""
    return form(field('image', data, 'photo.png', 'image/png'), *others)
