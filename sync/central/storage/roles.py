"""Separate PostgreSQL roles for the central server, as the best-run systems in this field
do: what is exposed to the network (the ingest role) may add records but never delete or
read the committee's log; the purge role may delete what is due and nothing else; the
committee's role reads sealed records and writes the audit log. The database owner (who
runs the migrations) keeps the rest (registering kiosks).

`kiosk-central db-roles --database URL` (as the owner) creates the three roles (NOLOGIN)
and grants them; a DBA then makes login users members of them, e.g.
``CREATE USER server_ingest IN ROLE kiosk_ingest``.
"""

from __future__ import annotations

INGEST, PURGE, COMMITTEE = "kiosk_ingest", "kiosk_purge", "kiosk_committee"

GRANTS = {
    # serve: authenticate kiosks, store batches, answer bundles (reads the risk list)
    INGEST: [
        "SELECT ON kiosks, meta, tag_keys, schema_version, manifests, risk_statements",
        "SELECT, INSERT, UPDATE ON audit_witness",
        "SELECT, INSERT ON records, batches",
        "SELECT, INSERT, UPDATE ON sequence_summary",
        "SELECT, INSERT, DELETE ON sequence_gaps",
        "SELECT, INSERT, UPDATE ON untagged_days",
    ],  # bookkeeping, never records
    # kiosk-central purge: delete what is due; expire risk entries into tombstones
    PURGE: [
        "SELECT ON schema_version",
        "SELECT, DELETE ON records, batches, tag_keys, held, untagged_days",
        "SELECT, DELETE ON risk_statements",
        "SELECT, UPDATE ON meta",
    ],
    # cases, reads, traces, risk changes, tag-key distribution, the audit log
    COMMITTEE: [
        "SELECT ON records, batches, kiosks, schema_version, sequence_summary, sequence_gaps, untagged_days",
        "SELECT, INSERT ON audit, reads, tag_keys",
        "SELECT, INSERT, DELETE ON held",
        "SELECT, INSERT ON risk_statements, manifests",
        "SELECT ON audit_witness",
        "SELECT, INSERT, UPDATE ON meta",
        "USAGE ON SEQUENCE reads_read_id_seq",
    ],
}


def statements() -> list[str]:
    out = []
    for role, grants in GRANTS.items():
        out.append(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        out.append(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        out += [f"GRANT {g} TO {role}" for g in grants]
    return out


def apply(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for sql in statements():
            conn.execute(sql)
    return list(GRANTS)
