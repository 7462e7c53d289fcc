"""The state store: the only package that speaks SQL."""

from lifecycled.store.core import Store, open_store

__all__ = ["Store", "open_store"]
