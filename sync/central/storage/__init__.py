"""The authority's storage: one interface, SQLite (a pilot) and PostgreSQL (a country)."""
