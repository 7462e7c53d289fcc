"""Input side of the shell: each source is a fetch function beside a pure parser."""
