"""The state store: the only package that speaks SQL."""

from lifecycled.store.core import Store, StoreWrites, open_store

__all__ = ["Store", "StoreWrites", "open_store"]
