"""Helpers for tests, benchmarks and the demo (not part of the lifecycled package)."""
