"""Output side of the shell: webhooks, Triton model control, backups."""
