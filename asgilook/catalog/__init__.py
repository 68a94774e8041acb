"""The catalog: which complete images the storage directory holds, in SQLite.

Image bytes are files of the storage directory, named after what the
catalog needs to know (`{id}.{width}x{height}.{bytes}.jpeg`); the catalog
is a SQLite database beside them (`.catalog/catalog.sqlite3`, in WAL mode),
shared by every worker process of the host. Its modules:

- `protocol`: the `Catalog`, what the store asks of any catalog;
- `database`: `SqliteCatalog`, its reader and writer threads, and the
  records it remembers between two changes;
- `sql`: the schema, the connections, the rows and the digest (the
  catalog's version: what the list is computed from);
- `changes`: a change as one transaction that also moves a file;
- `watch`: the change token, read on the event loop, through which every
  worker learns of another's change.

A server database for several hosts would be another implementation of
the `Catalog` protocol (see the README's storage section).
"""

from .changes import Removal
from .database import CATALOG_DIRECTORY, DATABASE_NAME, SqliteCatalog
from .protocol import Catalog
from .record import Page, Record, file_name

__all__ = [
    'CATALOG_DIRECTORY',
    'DATABASE_NAME',
    'Catalog',
    'Page',
    'Record',
    'Removal',
    'SqliteCatalog',
    'file_name',
]
