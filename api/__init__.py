"""govtrack: the HTTP face (app, settings, routes, decoding, errors, auth, logging, metrics, CLI)."""
