"""The `govtrack` jobs besides `serve` and `keys`: demo, export, stats, migrate (see api.cli)."""
