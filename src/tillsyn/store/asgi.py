"""An ASGI application factory for uvicorn worker processes (``tillsyn serve --workers N``).

Worker processes cannot receive a built app object, so each builds its own from the
database URL and key file that ``tillsyn serve`` put in their environment; the schema
was migrated, and the key made and checked, once by the parent before the workers start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tillsyn.agent.catalog import Catalog
from tillsyn.store import storekey
from tillsyn.store.app import StoreSettings, create_app
from tillsyn.store.database import open_engine

DATABASE_ENV = "TILLSYN_STORE_DATABASE_URL"
SETTINGS_ENV = "TILLSYN_STORE_SETTINGS"  # StoreSettings as JSON, from the serve flags


def create() -> Any:
    key = storekey.load_or_create(Path(os.environ[storekey.KEY_ENV]), create=False)
    settings = StoreSettings.from_env(os.environ.get(SETTINGS_ENV, "{}"))
    return create_app(open_engine(os.environ[DATABASE_ENV]), Catalog.load(), key, settings)
