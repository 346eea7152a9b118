"""Pass numbers: the pass id in a form people can read out, type and check.

The 16-byte pass id is written in Crockford's base32 (digits and capital letters without
I, L, O and U, so nothing reads as another), 26 symbols, then two check symbols (the id
modulo 1021, a prime below 32 * 32, in the same alphabet), grouped in fours:

    1MST-2BE8-9VYY-G5W4-ENEA-D8VE-2BK7

Reading one back is forgiving where people are (case, spaces, dashes, O for 0, I or L for 1)
and strict where it matters: the check refuses any one mistyped symbol and any two
neighbours swapped (both change the value by a non-multiple of the prime), and lets through
about one in a thousand other errors. Pure: no files, no clock.
"""

from __future__ import annotations

from kiosk.core.faults import UsageError
from kiosk.core.passes import PASS_ID_BYTES

SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_MODULUS = 1021  # prime, < 32 ** 2: two symbols
DATA_SYMBOLS = (PASS_ID_BYTES * 8 + 4) // 5  # 26 symbols carry 128 bits
GROUP = 4
_LENIENT = {"O": "0", "I": "1", "L": "1"}


class PassNumberError(UsageError):
    """Not a pass number; the message says what is wrong and what to do."""


def _check(value: int) -> str:
    c = value % CHECK_MODULUS
    return SYMBOLS[c >> 5] + SYMBOLS[c & 31]


def pass_number(pass_id: bytes) -> str:
    """The grouped, check-symbolled number of a pass id."""
    if len(pass_id) != PASS_ID_BYTES:
        raise ValueError(f"a pass id is {PASS_ID_BYTES} bytes")
    value = int.from_bytes(pass_id, "big")
    digits = []
    v = value
    for _ in range(DATA_SYMBOLS):
        digits.append(SYMBOLS[v & 31])
        v >>= 5
    plain = "".join(reversed(digits)) + _check(value)
    return "-".join(plain[i : i + GROUP] for i in range(0, len(plain), GROUP))


def parse_pass_number(text: str) -> bytes:
    """The pass id a number stands for; :class:`PassNumberError` says why a text is not one."""
    cleaned = "".join(ch for ch in str(text).upper() if ch not in " -\t")
    cleaned = "".join(_LENIENT.get(ch, ch) for ch in cleaned)
    if len(cleaned) != DATA_SYMBOLS + 2:
        raise PassNumberError(
            f"a pass number has {DATA_SYMBOLS + 2} symbols (as printed under the QR code: "
            f"{GROUP} per group), not {len(cleaned)}"
        )
    body, check = cleaned[:-2], cleaned[-2:]
    bad = sorted({ch for ch in cleaned if ch not in SYMBOLS})
    if bad:
        raise PassNumberError(f"a pass number has no {', '.join(repr(b) for b in bad)}: check what was typed")
    value = 0
    for ch in body:
        value = value * 32 + SYMBOLS.index(ch)
    if value >> (PASS_ID_BYTES * 8):
        raise PassNumberError("not a pass number (its first symbol is too large): check what was typed")
    if _check(value) != check:
        raise PassNumberError(
            "the pass number's check symbol does not match: a symbol is mistyped or two are swapped"
        )
    return value.to_bytes(PASS_ID_BYTES, "big")
