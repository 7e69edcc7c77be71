"""Map file coordinates onto FASTA records.

A site in a VCF / BED / bedGraph names a chromosome (or contig) and a position. It lands
on a record in one of two ways:
- the chrom is a record id: the position is relative to that record (a whole-chromosome
  FASTA, or a contig named after a region);
- the chrom is the genome chromosome of records named `chrom:start-end` (bedtools getfasta
  style, 0-based half-open): the position is lifted into every record that covers it.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator, Sequence

from seqmodel.io.fasta import FastaRecord


class RecordLocator:
    """Finds the records, and the offsets inside them, that a genomic interval covers."""

    def __init__(self, records: Sequence[FastaRecord]):
        self.by_id = {record.id: record.index for record in records}
        self.lengths = {record.index: len(record) for record in records}
        regions: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for record in records:
            interval = record.genome_interval
            if interval is not None:
                chrom, start, end = interval
                regions[chrom].append((start, end, record.index))
        self.regions = {chrom: sorted(rows) for chrom, rows in regions.items()}
        self.starts = {chrom: [row[0] for row in rows] for chrom, rows in self.regions.items()}
        self.max_span = {
            chrom: max(end - start for start, end, _ in rows) for chrom, rows in self.regions.items()
        }

    def knows(self, chrom: str) -> bool:
        """Whether `chrom` names a record or the chromosome of region-named records."""
        return chrom in self.by_id or chrom in self.regions

    def locate(self, chrom: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Records overlapping `[start, end)` (0-based) as (record index, local start, local end).

        Local coordinates are clipped to the record. Intervals past a record's end are returned
        clipped, so callers can tell "outside" (empty list) from "partly inside".
        """
        hits = []
        if chrom in self.by_id:
            index = self.by_id[chrom]
            local_end = min(end, self.lengths[index])
            if start < local_end:
                hits.append((index, start, local_end))
        rows = self.regions.get(chrom)
        if rows:
            lo = bisect.bisect_left(self.starts[chrom], start - self.max_span[chrom])
            hi = bisect.bisect_left(self.starts[chrom], end)
            for region_start, region_end, index in rows[lo:hi]:
                if region_end > start and region_start < end:
                    hits.append(
                        (
                            index,
                            max(start, region_start) - region_start,
                            min(end, region_end) - region_start,
                        )
                    )
        return hits


def overlapping_pairs(intervals: Sequence[tuple[str, int, int]]) -> Iterator[tuple[int, int]]:
    """Index pairs `(i, j)` of the `(chrom, start, end)` intervals (0-based half-open) that
    overlap, found by one sweep in (chrom, start) order: `i` is the one that starts first."""
    order = sorted(range(len(intervals)), key=lambda k: intervals[k])
    active: list[int] = []  # intervals on the sweep's chrom that end past the current start
    for j in order:
        chrom, start, _ = intervals[j]
        active = [i for i in active if intervals[i][0] == chrom and intervals[i][2] > start]
        for i in active:
            yield i, j
        active.append(j)
