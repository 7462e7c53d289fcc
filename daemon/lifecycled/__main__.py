"""Allow ``python -m lifecycled``."""

from lifecycled.cli import entry

entry()
