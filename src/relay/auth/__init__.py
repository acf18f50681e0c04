"""Authentication: API keys, JWTs, the client-state cache and the FastAPI dependency."""
