"""govtrack storage: the one event schema, the EventStore protocol and its engines."""
