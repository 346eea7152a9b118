"""Separate PostgreSQL roles for the central server, as the best-run systems in this field
do: what is exposed to the network (the ingest role) may add records but never delete or
read the committee's log; the purge role may delete what is due and nothing else; the
committee's role reads sealed records and writes the audit log. The database owner (who
runs the migrations) keeps the rest (registering kiosks by hand; a kiosk enrolling
with a token goes through kiosk_enrol).

`kiosk-central db-roles --database URL` (as the owner) creates the three roles (NOLOGIN)
and grants them; a DBA then makes login users members of them, e.g.
``CREATE USER server_ingest IN ROLE kiosk_ingest``.
"""

from __future__ import annotations

INGEST, PURGE, COMMITTEE = "kiosk_ingest", "kiosk_purge", "kiosk_committee"

FUNCTIONS = {
    "purge_records": "kiosk_purge_records(integer)",
    "purge_rest": "kiosk_purge_rest(integer)",
    "audit_append": "kiosk_audit_append(bigint, text, text, text, text, text, text, double precision)",
    "purge_enrolment": "kiosk_purge_enrolment()",
    "enrol": "kiosk_enrol(text, bytea, bytea)",
    "drop_tag_keys": "kiosk_drop_spent_tag_keys()",
}

GRANTS = {
    # serve: authenticate kiosks, store batches, answer bundles; keep the aggregates `status`
    # reads (which move only forward: triggers refuse anything else)
    INGEST: [
        "SELECT ON kiosks, meta, tag_keys, schema_version, manifests, risk_statements, exposure_lists",
        "SELECT, INSERT, UPDATE ON audit_witness",
        "SELECT, INSERT ON records, batches",
        "SELECT, INSERT, UPDATE ON sequence_summary",
        "SELECT, INSERT, DELETE ON sequence_gaps",
        "SELECT, INSERT, UPDATE ON untagged_days",
        "SELECT, INSERT, UPDATE ON kiosk_health",  # the kiosks' signed health, last seen
        "SELECT, INSERT, UPDATE, DELETE ON fleet_history",  # the hourly fleet state
        "SELECT ON enrolment_tokens, update_metadata, update_targets",  # releases: relayed only
        # a kiosk joins only by a token the committee made, once (no INSERT on kiosks)
        f"EXECUTE ON FUNCTION {FUNCTIONS['enrol']}, {FUNCTIONS['drop_tag_keys']}",
    ],  # bookkeeping, never records
    # kiosk-central purge: only through two functions that go by the database's own clock:
    # what is past its deletion time and not held; no DELETE on any table
    PURGE: [
        "SELECT ON schema_version",
        f"EXECUTE ON FUNCTION {FUNCTIONS['purge_records']}, {FUNCTIONS['purge_rest']}, "
        f"{FUNCTIONS['purge_enrolment']}",
    ],
    # cases, reads, traces, risk changes, tag-key distribution, manifests: the audit log, the
    # risk list and meta change only through kiosk_audit_append (an entry, and a risk
    # statement only with its own entry, in one transaction)
    COMMITTEE: [
        "SELECT ON records, batches, kiosks, schema_version, sequence_summary, sequence_gaps, untagged_days",
        "SELECT ON kiosk_health, fleet_history",
        "SELECT ON audit, meta, risk_statements, audit_witness",
        "SELECT, INSERT ON reads, tag_keys, manifests",
        "UPDATE (doc) ON tag_keys",  # signed again by a successor root (keys successor --promote)
        "SELECT, INSERT, DELETE ON exposure_lists",  # only the newest is kept
        "SELECT, INSERT, DELETE ON held",
        "SELECT, INSERT ON enrolment_tokens",  # `enrolment issue`: the tokens the root signed
        "SELECT, INSERT, UPDATE ON update_metadata",  # `release publish`: what the root signed
        "SELECT, INSERT, DELETE ON update_targets",
        "USAGE ON SEQUENCE reads_read_id_seq",
        f"EXECUTE ON FUNCTION {FUNCTIONS['audit_append']}",
    ],
}


def statements() -> list[str]:
    # Functions run as their owner: nobody but a role granted one may call it.
    out = [f"REVOKE ALL ON FUNCTION {f} FROM PUBLIC" for f in FUNCTIONS.values()]
    for role, grants in GRANTS.items():
        out.append(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        out.append(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        out.append(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {role}")
        out += [f"GRANT {g} TO {role}" for g in grants]
    return out


def apply(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for sql in statements():
            conn.execute(sql)
    return list(GRANTS)
