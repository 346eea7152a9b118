"""The kiosk's own SQLite store: sealed check-ins, WAL, migrations, damaged files moved aside."""
