"""Scheduled jobs: fetch -> core -> store/actions, one module each."""
