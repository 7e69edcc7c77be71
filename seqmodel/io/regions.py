"""Region names `chrom:start-end` (bedtools getfasta style): 0-based half-open, one parser, one formatter."""

from __future__ import annotations

import re

REGION_ID = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)$")


def parse_region(text: str) -> tuple[str, int, int] | None:
    """(chrom, start, end) of `chrom:start-end`, or None when `text` is not a region name."""
    match = REGION_ID.match(text)
    if match is None:
        return None
    return match["chrom"], int(match["start"]), int(match["end"])


def format_region(chrom: str, start: int, end: int) -> str:
    """`chrom:start-end` of a 0-based half-open interval."""
    return f"{chrom}:{start}-{end}"
