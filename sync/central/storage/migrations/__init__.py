"""The authority's schema, as numbered SQL files per backend (``sqlite/0001.sql``, ...,
``postgresql/0001.sql``, ...): each applied once, in order, and never changed after it has
shipped (a change is a new file). A store records how many it has applied (SQLite's
``PRAGMA user_version``, PostgreSQL's ``schema_version``)."""

from __future__ import annotations

from importlib.resources import files

BACKENDS = ("sqlite", "postgresql")


def load(backend: str) -> list[str]:
    """Every migration of ``backend``, in order (file 0001.sql first)."""
    if backend not in BACKENDS:
        raise ValueError(f"no migrations for {backend!r}")
    folder = files(__name__).joinpath(backend)
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    for number, name in enumerate(names, start=1):
        if name != f"{number:04d}.sql":
            raise ValueError(f"migrations/{backend}: {name} where {number:04d}.sql was expected (a gap)")
    return [folder.joinpath(name).read_text(encoding="utf-8") for name in names]
