"""Opening a record without its key id (issue 33): the committee tries the keys of the record's
day, and a record sealed with an older key (a kiosk offline past its keys) every other key."""

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk.core.keys import sealing_kid
from kiosk.core.seal import SealingKey, seal
from kiosk.core.timing import DAY, time_bucket
from sync.central.committee.keychain import Keychain
from sync.central.committee.reading import open_record

T0 = 1_790_000_000 - 1_790_000_000 % DAY


def chain(days=5):
    keys, schedule = {}, []
    for day in range(days):
        for klass in ("normal", "significant"):
            private = X25519PrivateKey.from_private_bytes(
                bytes([day * 2 + (klass == "significant") + 1]) * 32
            )
            kid = sealing_kid(private.public_key())
            keys[kid] = private
            schedule.append(
                {"kid": kid, "class": klass, "valid_from": T0 + day * DAY, "valid_to": T0 + (day + 1) * DAY}
            )
    return Keychain.of(keys, schedule), schedule


def stored(schedule, day, klass, *, at, fallback=False):
    """A record sealed with the key of (day, class), as the server holds it: no key id."""
    entry = next(e for e in schedule if e["valid_from"] == T0 + day * DAY and e["class"] == klass)
    key = SealingKey.of(chain()[0][entry["kid"]].public_key())
    rid = f"00000000-0000-4000-8000-{day:06d}{len(klass):06d}"
    return {
        "record_id": rid,
        "captured_at": time_bucket(at),
        "seal_fallback": fallback,
        "sealed": seal({"venue": "v", "at": at}, key, record_id=rid),
    }


def test_the_days_two_keys_are_tried_normal_first_and_no_other_day():
    keys, schedule = chain()
    at = T0 + 2 * DAY + 3600
    tried = keys.candidates(time_bucket(at))
    assert len(tried) == 2 and tried[0] is keys[schedule[4]["kid"]]  # day 2, normal first
    for klass in ("normal", "significant"):
        assert open_record(stored(schedule, 2, klass, at=at), keys)["at"] == at
    # a record of day 2 at 23:58 sits in the bucket 23:55-24:00: still day 2's keys only
    late = T0 + 3 * DAY - 120
    assert len(keys.candidates(time_bucket(late))) == 2
    assert open_record(stored(schedule, 2, "significant", at=late), keys) is not None


def test_a_record_sealed_with_an_older_key_is_found_when_marked_and_not_otherwise():
    keys, schedule = chain()
    at = T0 + 4 * DAY + 60  # sealed with day 1's significant key: the kiosk was offline
    marked = stored(schedule, 1, "significant", at=at, fallback=True)
    assert open_record(marked, keys) is not None
    assert open_record({**marked, "seal_fallback": False}, keys) is None  # the day's keys only
    assert len(keys.candidates(time_bucket(at), fallback=True)) == len(keys)


def test_a_destroyed_key_opens_nothing_and_a_damaged_blob_is_none():
    keys, schedule = chain()
    at = T0 + DAY + 60
    rec = stored(schedule, 1, "normal", at=at)
    gone = Keychain(
        {k: v for k, v in keys.items() if k != schedule[2]["kid"]}, keys.periods[:2] + keys.periods[3:]
    )
    assert open_record(rec, gone) is None
    assert open_record({**rec, "sealed": rec["sealed"][:-1] + b"\0"}, keys) is None
