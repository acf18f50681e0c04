"""Health: Relay's own state and its dependencies', each check timed."""
