"""An ASGI application factory for uvicorn worker processes (``tillsyn serve --workers N``).

Worker processes cannot receive a built app object, so each builds its own from the
database URL that ``tillsyn serve`` put in its environment; the schema was migrated
once by the parent before the workers start.
"""

from __future__ import annotations

import os
from typing import Any

from tillsyn.agent.catalog import Catalog
from tillsyn.store.app import create_app
from tillsyn.store.database import open_engine

DATABASE_ENV = "TILLSYN_STORE_DATABASE_URL"


def create() -> Any:
    return create_app(open_engine(os.environ[DATABASE_ENV]), Catalog.load())
