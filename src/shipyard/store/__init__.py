"""Persistence: one SQL implementation over SQLite (default) and PostgreSQL.

Invariants:
- every table is declared once, in ``schema.py``; migrations in ``migrations.py``
  are the only code that creates or alters tables;
- dialect differences live in ``dialects.py`` and nowhere else;
- resource documents are stored as JSON in a ``doc`` column, with the fields that
  are filtered or joined on lifted into their own indexed columns.
"""

from shipyard.store.db import Database, open_database

__all__ = ["Database", "open_database"]
