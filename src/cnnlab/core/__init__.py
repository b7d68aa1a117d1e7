"""The bottom layer: arithmetic, registries, configs, run folders and errors (stdlib + torch only)."""
