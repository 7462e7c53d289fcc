"""Pure functions: no network, files, clock, threads or global random state."""
