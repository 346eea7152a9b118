-- Enrolment tokens the committee made (issue 32): the root-signed document (its lookup, the
-- kiosk id it gives, the venue, the expiry, the code's public keys; never the code), the
-- search-tag keys sealed to the code's key (root-signed docs, JSON; emptied when the token
-- is used or expires), and when and by which device key it was used (one use).
CREATE TABLE enrolment_tokens (
    token TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL UNIQUE,
    venue TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL,
    tag_docs TEXT NOT NULL,
    used_at REAL,
    device_key BLOB
);
