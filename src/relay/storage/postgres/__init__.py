"""The production store: PostgreSQL through asyncpg."""
