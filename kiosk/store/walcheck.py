"""Is a SQLite write-ahead log damaged in a way SQLite would hide?

SQLite replays a WAL frame by frame and stops, silently, at the first frame whose checksum
does not chain: every transaction after that point is dropped, and with it the check-ins
whose signal was already shown and the sequence numbers they used. A torn last frame after
a power cut is normal (that transaction never committed); a bad frame *followed by further
committed frames of the same WAL generation* is not: that is damage, and the file must be
moved aside rather than opened.

Format (https://www.sqlite.org/fileformat.html, "WAL file format"): a 32-byte header (magic,
version, page size, checkpoint sequence, salt-1, salt-2, checksum), then frames of a 24-byte
header (page number, database size after commit or 0, salt-1, salt-2, checksum) and one page.
The checksum runs over 32-bit word pairs, cumulative from the header through every frame.
Pure: bytes in, a reason (or None) out.
"""

from __future__ import annotations

import struct
from pathlib import Path

MAGIC_LE, MAGIC_BE = 0x377F0682, 0x377F0683
HEADER, FRAME_HEADER = 32, 24


def _checksum(data: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def wal_damage(data: bytes) -> str | None:
    """None when SQLite would replay every committed frame this WAL holds; else why not."""
    if len(data) < HEADER:
        return None  # empty or never written: nothing to lose
    magic, _version, page_size, _ckpt, salt1, salt2, c1, c2 = struct.unpack(">8I", data[:HEADER])
    if magic not in (MAGIC_LE, MAGIC_BE) or page_size < 512 or page_size & (page_size - 1):
        return "WAL header unreadable" if len(data) > HEADER else None
    big = magic == MAGIC_BE
    frame_size = FRAME_HEADER + page_size
    frames = (len(data) - HEADER) // frame_size
    if _checksum(data[:24], 0, 0, big) != (c1, c2):
        return "WAL header checksum wrong" if frames else None
    s0, s1 = c1, c2
    for i in range(frames):
        off = HEADER + i * frame_size
        page, _commit, f_salt1, f_salt2, f1, f2 = struct.unpack(">6I", data[off : off + FRAME_HEADER])
        if (f_salt1, f_salt2) != (salt1, salt2):
            return None  # an older generation's leftovers: normal
        s0, s1 = _checksum(data[off : off + 8], s0, s1, big)
        s0, s1 = _checksum(data[off + FRAME_HEADER : off + frame_size], s0, s1, big)
        if (s0, s1) != (f1, f2) or page == 0:
            # Where this generation goes on to commit more, SQLite would drop those commits.
            for j in range(i + 1, frames):
                o = HEADER + j * frame_size
                _, later_commit, l1, l2 = struct.unpack(">4I", data[o : o + 16])
                if (l1, l2) == (salt1, salt2) and later_commit:
                    return (
                        f"WAL frame {i + 1} of {frames} fails its checksum and committed "
                        "frames follow it (SQLite would drop them)"
                    )
            return None  # a torn, uncommitted tail
    return None


def wal_file_damage(path: Path) -> str | None:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return wal_damage(data)
