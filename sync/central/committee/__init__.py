"""The health committee: its hash-chained audit log, members and cases, reading sealed
records for a case, and contact tracing."""
