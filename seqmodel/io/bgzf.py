"""BGZF basics shared by the streaming reader and the indexed genome: block detection and inflation."""

from __future__ import annotations

import zlib

GZIP_MAGIC = b"\x1f\x8b"


def is_bgzf_header(header: bytes) -> bool:
    """Whether an 18-byte gzip member header carries the BGZF extra field ('BC')."""
    return len(header) == 18 and header[:2] == GZIP_MAGIC and bool(header[3] & 4) and header[12:14] == b"BC"


def inflate_members(raw: bytes) -> bytes:
    """Concatenated gzip members, inflated (zlib releases the GIL while it inflates).

    Raises EOFError when the last member is cut short.
    """
    parts = []
    while raw:
        member = zlib.decompressobj(31)
        parts.append(member.decompress(raw))
        if not member.eof:
            raise EOFError("truncated gzip member")
        raw = member.unused_data
    return b"".join(parts)
