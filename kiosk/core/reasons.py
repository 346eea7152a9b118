"""Outcomes and reason codes: the vocabulary shared by the core, the store and the logs."""

from enum import StrEnum


class Outcome(StrEnum):
    ADMIT = "admit"  # green: enter
    EXPOSED = "exposed"  # green, its own rhythm: enter, and get tested (a level below deny)
    DENY = "deny"  # red: the visitor is at the deny level, entry refused
    INVALID = "invalid"  # amber: not a valid pass, see staff


class Reason(StrEnum):
    VALID = "valid"
    RISK_LEVEL = "risk_level"  # denied on the level the pass carries
    RISK_LIST = "risk_list"  # denied on the kiosk's risk list
    NOT_A_PASS = "not_a_pass"  # no pass prefix: some other QR code
    TOO_LARGE = "too_large"
    BAD_ENCODING = "bad_encoding"  # base45
    BAD_COMPRESSION = "bad_compression"
    MALFORMED = "malformed"  # CBOR / COSE structure
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    BAD_CLAIMS = "bad_claims"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
