"""API clients: keys, tokens, the client-state cache and the change feed."""
