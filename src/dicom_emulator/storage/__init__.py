"""Persistence: the SQL index (SQLite or PostgreSQL) and the blob store (filesystem or memory)."""
