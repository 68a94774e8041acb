"""The catalog: which complete images the service holds, and in what order.

One host keeps it in SQLite beside the image files of its storage directory
(`.catalog/catalog.sqlite3`, in WAL mode, shared by the host's workers);
several hosts keep it in PostgreSQL beside an S3 bucket. Its modules:

- `protocol`: the `Catalog`, what the store asks of any catalog;
- `database`: `SqliteCatalog`, its reader and writer threads, and the
  records it remembers between two changes; `sql`, `changes`, `watch`
  (the change token through which every worker learns of another's
  change), `scan` and `reindex` (the catalog against the directory);
- `postgres`: `PostgresCatalog`; `pgsql`, `notices` (every host's changes
  heard of), `reconcile` (the catalog against the bucket) and `migrate`;
- `opening`: the back ends a config names, opened at start.
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
