"""Allow ``python -m lifecycled``."""

from lifecycled.cli import main

raise SystemExit(main())
