"""The gallery: the page a browser is shown at `/`, built on the API alone.

- page.py: `Gallery`, `GET /`: the HTML, with the newest page of pictures
  in it (so the page shows them without JavaScript), and where the script
  takes over: the list's next page and the event stream's position.
- assets.py: `Assets`, `GET /gallery/{name}`: the stylesheet, the script
  and the icon, kept in memory with their validators; asked for under a
  versioned URL they may be kept for a year; the icon at `/favicon.ico` too.
- policy.py: the headers every gallery answer carries (a strict
  Content-Security-Policy, nosniff, Referrer-Policy).
- static/: the files themselves (gallery.html is the page's template). No
  build step: what is there is what is served.

The script (static/gallery.js) does everything else through the API: it
pages with the list's `Link` headers, uploads with `POST /images`, keeps
delete tokens in the browser's storage, and follows `/events`.
"""

from .assets import Assets
from .page import Gallery

__all__ = ['Assets', 'Gallery']
