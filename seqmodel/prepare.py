"""`seqmodel-prepare`: a training set from a genome, regions and mutations, split by genomic region.

Regions come from one of: a FASTA of sequences already cut (`chrom:start-end` ids), a BED of
regions (4th column = label) cut from the genome, peaks (BED or FASTA) plus GC-matched
background windows sampled from the genome, or windows tiled over genome intervals.
Mutations (a VCF, recognised by its first line, or a TSV of calls) have their REF checked
against the genome; those inside the regions are written as a VCF in the regions' chromosome
names. Outputs go to one folder:

- `regions.fa.gz`: every record, header `>chrom:start-end [words] [label=L] split=S` (BGZF);
- `train.fa.gz`, `val.fa.gz`, `test.fa.gz`: the records of each split (an empty split is not written);
- `splits.tsv`: `id chrom start end label split`, one row per record;
- `mutations.vcf.gz`: the SNVs inside the regions, with `--mutations`: `AC` = calls at the site
  (a TSV row is one call; a VCF SNV brings its carriers, see `seqmodel.io.vcf`), and `AN` when
  every input SNV has the same genomes;
- `ref_mismatches.tsv`: the calls whose REF differs from the genome, when there are any.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from seqmodel.data.intervals import overlapping_pairs
from seqmodel.data.splits import SPLITS, block_splits, check_disjoint
from seqmodel.errors import ParameterError, SeqmodelInputError, argparse_flags, run_cli
from seqmodel.io import alphabet
from seqmodel.io.bed import read_bed
from seqmodel.io.fasta import load_fasta
from seqmodel.io.genome import Genome, chrom_key
from seqmodel.io.regions import format_region, parse_region
from seqmodel.io.tables import CallsReader
from seqmodel.io.vcf import Snv, VcfReader, is_vcf, named_vcf, write_vcf
from seqmodel.simulate import write_outputs

FASTA_LINE = 80
FASTA_SUFFIXES = (".fa", ".fa.gz", ".fasta", ".fasta.gz", ".fna", ".fna.gz")
BACKGROUND_TRIES = 200


@dataclass
class PreparedRegion:
    """A record to write: `[start, end)` 0-based on `chrom` (a plain contig starts at 0)."""

    chrom: str
    start: int
    end: int
    tokens: np.ndarray
    label: str | None
    words: str = ""
    placed: bool = True  # False: a plain-id contig, not a piece of a genome chromosome

    @property
    def id(self) -> str:
        return format_region(self.chrom, self.start, self.end) if self.placed else self.chrom


def _fasta_regions(path: str) -> list[PreparedRegion]:
    regions = []
    for record in load_fasta(path):
        words = " ".join(w for w in record.description.split()[1:] if not w.startswith(("label=", "split=")))
        label = record.fields.get("label")
        interval = record.genome_interval
        if interval is None:
            regions.append(
                PreparedRegion(record.id, 0, len(record), record.tokens, label, words, placed=False)
            )
            continue
        chrom, start, end = interval
        if end - start != len(record):
            raise SeqmodelInputError(
                path,
                f"record {record.index + 1} ({record.id})",
                f"the id spans {end - start} bp but the sequence has {len(record)}",
            )
        regions.append(PreparedRegion(chrom, start, end, record.tokens, label, words))
    return regions


def _bed_regions(path: str, genome: Genome, default_label: str | None) -> list[PreparedRegion]:
    regions = []
    for interval in read_bed(path, "regions file"):
        where, start, end = f"line {interval.line}", interval.start, interval.end
        name = genome.resolve(interval.chrom)
        if name is None:
            raise SeqmodelInputError(path, where, f"chromosome {interval.chrom!r} is not in the genome")
        if end > genome.lengths[name]:
            raise SeqmodelInputError(
                path, where, f"{start}-{end} is not inside {name} (BED is 0-based half-open)"
            )
        label = default_label if interval.name is None else interval.name
        regions.append(PreparedRegion(name, start, end, genome.fetch(name, start, end), label))
    if not regions:
        raise SeqmodelInputError(path, None, "no regions in the BED file")
    return regions


def tile_regions(genome: Genome, spec: str, size: int) -> list[PreparedRegion]:
    """Windows of `size` bp over `chrom` or `chrom:start-end` (0-based half-open); windows made
    only of N are left out, as is a last window shorter than `size`."""
    chrom, start, end = parse_region(spec) or (spec, 0, None)
    name = genome.resolve(chrom)
    if name is None:
        raise ParameterError("tile", f"chromosome {chrom!r} is not in {genome.path}")
    end = genome.lengths[name] if end is None else end
    if size < 1 or not 0 <= start < end <= genome.lengths[name] or end - start < size:
        raise ParameterError(
            "tile", f"{spec} must lie inside {name} (length {genome.lengths[name]}) and hold a window"
        )
    tokens = genome.sequence(name)
    regions = []
    for s in range(start, end - size + 1, size):
        window = tokens[s : s + size]
        if (window < alphabet.N).any():
            regions.append(PreparedRegion(name, s, s + size, window, None))
    return regions


def gc_fraction(tokens: np.ndarray) -> float:
    """G+C share of the A/C/G/T bases (0 when there are none)."""
    valid = tokens < alphabet.N
    gc = (tokens == alphabet.C) | (tokens == alphabet.G)
    return float(gc.sum() / valid.sum()) if valid.any() else 0.0


def gc_matched_background(
    genome: Genome, peaks: Sequence[PreparedRegion], per_peak: int, tolerance: float, seed: int
) -> list[PreparedRegion]:
    """`per_peak` windows per peak from the genome, each the peak's length with a G+C share within
    `tolerance` of the peak's, free of N, overlapping no peak and no other background window.

    Candidate windows sit on a grid of the longest peak length over every chromosome of the
    genome; each peak draws uniformly among the unused candidates within tolerance.
    """
    slot = max(len(p.tokens) for p in peaks)
    lengths = sorted({len(p.tokens) for p in peaks})
    starts, chroms, gc, usable = [], [], {w: [] for w in lengths}, {w: [] for w in lengths}
    for chrom_index, name in enumerate(genome.lengths):
        tokens = genome.sequence(name)
        grid = np.arange(0, len(tokens) - slot + 1, slot)
        if grid.size == 0:
            continue
        cum_gc = np.concatenate([[0], np.cumsum((tokens == alphabet.C) | (tokens == alphabet.G))])
        cum_n = np.concatenate([[0], np.cumsum(tokens >= alphabet.N)])
        free = np.ones(len(grid), dtype=bool)
        for peak in peaks:
            if peak.placed and chrom_key(peak.chrom) == chrom_key(name):
                free[peak.start // slot : (peak.end - 1) // slot + 1] = False
        for w in lengths:
            gc[w].append((cum_gc[grid + w] - cum_gc[grid]) / w)
            usable[w].append(free & (cum_n[grid + w] == cum_n[grid]))
        starts.append(grid)
        chroms.append(np.full(len(grid), chrom_index))
    names = list(genome.lengths)
    start = np.concatenate(starts)
    chrom = np.concatenate(chroms)
    used = np.zeros(len(start), dtype=bool)
    rng = np.random.default_rng(seed)
    background = []
    for index in rng.permutation(len(peaks)):
        peak = peaks[index]
        w = len(peak.tokens)
        values = np.concatenate(gc[w])
        target = gc_fraction(peak.tokens)
        pool = np.flatnonzero(np.concatenate(usable[w]) & (np.abs(values - target) <= tolerance))
        for _ in range(per_peak):
            for _ in range(BACKGROUND_TRIES):
                pick = pool[rng.integers(len(pool))] if len(pool) else -1
                if pick >= 0 and not used[pick]:
                    break
            else:
                raise ParameterError(
                    "gc_tolerance",
                    f"too few background windows with G+C {target:.2f} +/- {tolerance} for peak {peak.id}",
                )
            used[pick] = True
            name, s = names[chrom[pick]], int(start[pick])
            background.append(
                PreparedRegion(name, s, s + w, genome.fetch(name, s, s + w), "0", f"bg gc={values[pick]:.2f}")
            )
    return background


def drop_overlaps(regions: Sequence[PreparedRegion]) -> tuple[list[PreparedRegion], list[PreparedRegion]]:
    """(kept, dropped): a region overlapping one kept before it (in input order) is dropped."""
    spans = [(chrom_key(r.chrom) if r.placed else f"contig {r.chrom}", r.start, r.end) for r in regions]
    partners: dict[int, list[int]] = {}
    for i, j in overlapping_pairs(spans):
        partners.setdefault(max(i, j), []).append(min(i, j))
    dropped_at: set[int] = set()
    for index in range(len(regions)):
        if any(earlier not in dropped_at for earlier in partners.get(index, [])):
            dropped_at.add(index)
    kept = [r for i, r in enumerate(regions) if i not in dropped_at]
    return kept, [r for i, r in enumerate(regions) if i in dropped_at]


def fasta_text(regions: Sequence[PreparedRegion], splits: Sequence[str]) -> str:
    """FASTA records, 80-column lines, header `>id [words] [label=L] split=S`."""
    parts = []
    for region, split in zip(regions, splits, strict=True):
        words = [region.id] + ([region.words] if region.words else [])
        words += [f"label={region.label}"] if region.label is not None else []
        seq = alphabet.decode(region.tokens)
        lines = [seq[i : i + FASTA_LINE] for i in range(0, len(seq), FASTA_LINE)]
        parts.append(">" + " ".join(words + [f"split={split}"]) + "\n" + "\n".join(lines) + "\n")
    return "".join(parts)


def place_mutations(
    snvs: Sequence[Snv], regions: Sequence[PreparedRegion], splits: Sequence[str], genome: Genome | None
) -> tuple[list[tuple[Snv, str]], list[Snv], Counter, int, int]:
    """Check each call's REF (against the genome, else against the regions) and place it in the
    region that holds it. Returns (mismatches with the base seen, calls inside regions (in
    the regions' chromosome names), calls per split, calls not checkable, calls checked)."""
    by_key: dict[str, list[int]] = {}
    for index, region in enumerate(regions):
        by_key.setdefault(chrom_key(region.chrom) if region.placed else region.chrom, []).append(index)
    order = {key: sorted(rows, key=lambda i: regions[i].start) for key, rows in by_key.items()}
    region_starts = {key: np.array([regions[i].start for i in rows]) for key, rows in order.items()}
    mismatches, inside, per_split = [], [], Counter()
    off, checked = 0, 0
    for snv in sorted(snvs, key=lambda s: chrom_key(s.chrom)):
        key = chrom_key(snv.chrom)
        holder = None
        if key in order or snv.chrom in order:
            key = key if key in order else snv.chrom
            at = int(np.searchsorted(region_starts[key], snv.pos, side="right")) - 1
            if at >= 0 and snv.pos < regions[order[key][at]].end:
                holder = order[key][at]
        if genome is not None and genome.resolve(snv.chrom) is not None:
            tokens = genome.sequence(snv.chrom)
            seen = alphabet.BASES[tokens[snv.pos]] if snv.pos < len(tokens) else "past the end"
        elif holder is not None:
            region = regions[holder]
            seen = alphabet.BASES[region.tokens[snv.pos - region.start]]
        else:
            off += 1
            continue
        checked += 1
        if seen != snv.ref:
            mismatches.append((snv, seen))
            continue
        if holder is not None:
            region = regions[holder]
            inside.append(replace(snv, chrom=region.chrom))
            per_split[splits[holder]] += 1
    return mismatches, inside, per_split, off, checked


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seqmodel-prepare",
        description="Build a training set (FASTA per split, mutations VCF) from a genome, regions and "
        "mutations, split by genomic region.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--sequences", help="FASTA of regions already cut (ids chrom:start-end, label=...)")
    source.add_argument("--regions", help="BED of regions cut from --genome (4th column: label)")
    source.add_argument(
        "--peaks", help="peaks (BED cut from --genome, or FASTA), label 1, + GC-matched background"
    )
    source.add_argument(
        "--tile", action="append", help="chrom or chrom:start-end (0-based) to tile; repeatable"
    )
    p.add_argument("--genome", help="genome FASTA (plain, gzip, or BGZF with .fai/.gzi)")
    p.add_argument("--tile-size", type=int, default=1000, help="window length for --tile (default 1000)")
    p.add_argument(
        "--background-per-peak", type=int, default=1, help="background windows per peak (default 1)"
    )
    p.add_argument("--gc-tolerance", type=float, default=0.02, help="background G+C match (default 0.02)")
    p.add_argument("--mutations", help="SNVs to check and keep: VCF, or TSV with chrom pos ref alt columns")
    p.add_argument(
        "--max-ref-mismatch",
        type=float,
        default=0.01,
        help="stop when more than this share of checked REF alleles differ from the genome (default 0.01)",
    )
    p.add_argument("--split-block", type=int, default=1_000_000, help="genome block of one split (bp)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of records for validation")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of records for test")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the background draw")
    p.add_argument("--out", required=True, help="output folder (created)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `seqmodel-prepare`; bad input ends with one line and exit code 2."""
    # block_splits names its block size `block_size`; the flag is --split-block.
    run_cli(lambda: prepare(argv), {**argparse_flags(parser()), "block_size": "--split-block"})


def _regions(
    args: argparse.Namespace, genome: Genome | None, p: argparse.ArgumentParser
) -> list[PreparedRegion]:
    needs_genome = args.regions or args.tile or (args.peaks and not args.peaks.endswith(FASTA_SUFFIXES))
    if (needs_genome or (args.peaks and args.background_per_peak > 0)) and genome is None:
        p.error("--regions, --tile and --peaks (BED, or with background) need --genome")
    if args.sequences:
        return _fasta_regions(args.sequences)
    if args.regions:
        return _bed_regions(args.regions, genome, None)
    if args.tile:
        return [region for spec in args.tile for region in tile_regions(genome, spec, args.tile_size)]
    if args.peaks.endswith(FASTA_SUFFIXES):
        peaks = _fasta_regions(args.peaks)
        for peak in peaks:
            peak.label = "1"
    else:
        peaks = _bed_regions(args.peaks, genome, "1")
    peaks, _ = drop_overlaps(peaks)
    if args.background_per_peak < 0:
        p.error("--background-per-peak must be >= 0")
    return peaks + gc_matched_background(
        genome, peaks, args.background_per_peak, args.gc_tolerance, args.seed
    )


def prepare(argv: Sequence[str] | None = None) -> dict[str, Path]:
    """Run `seqmodel-prepare`; returns the written files by name."""
    p = parser()
    args = p.parse_args(argv)
    genome = Genome(args.genome) if args.genome else None
    regions, dropped = drop_overlaps(_regions(args, genome, p))
    splits = block_splits(
        [(r.chrom, r.start, r.end, r.id) for r in regions],
        args.split_block,
        args.val_fraction,
        args.test_fraction,
        args.seed,
    )
    check_disjoint(
        {
            name: [(r.chrom, r.start, r.end, r.id) for r, s in zip(regions, splits, strict=True) if s == name]
            for name in SPLITS
        }
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = {out / "regions.fa.gz": fasta_text(regions, splits)}
    for name in SPLITS:
        chosen = [i for i, s in enumerate(splits) if s == name]
        if chosen:
            texts[out / f"{name}.fa.gz"] = fasta_text([regions[i] for i in chosen], [name] * len(chosen))
    texts[out / "splits.tsv"] = "id\tchrom\tstart\tend\tlabel\tsplit\n" + "".join(
        f"{r.id}\t{r.chrom}\t{r.start}\t{r.end}\t{'' if r.label is None else r.label}\t{s}\n"
        for r, s in zip(regions, splits, strict=True)
    )
    report = [_region_summary(regions, dropped, splits, args.split_block)]
    if args.mutations:
        # A VCF by its first line (a `.vcf` name without that line is an error, not a table).
        vcf = is_vcf(args.mutations) or named_vcf(args.mutations)
        reader = VcfReader(args.mutations) if vcf else CallsReader(args.mutations)
        snvs = list(reader)
        skipped = reader.skipped
        mismatches, inside, per_split, off, checked = place_mutations(snvs, regions, splits, genome)
        against = "the genome" if genome is not None else "the regions"
        if checked and len(mismatches) > args.max_ref_mismatch * checked:
            first, seen = mismatches[0]
            raise SeqmodelInputError(
                args.mutations,
                f"line {first.line}",
                f"{len(mismatches)} of {checked} REF alleles differ from {against} (first: REF {first.ref}, "
                f"{against} has {seen} at {first.chrom}:{first.pos + 1}); wrong genome build or coordinates?",
            )
        contigs = sorted({r.chrom for r in regions})
        genomes = {snv.genomes for snv in snvs}  # AN only when every input SNV agrees
        an = genomes.pop() if len(genomes) == 1 else None
        texts[out / "mutations.vcf.gz"] = lambda handle: write_vcf(
            handle,
            inside,
            contigs,
            f"seqmodel-prepare mutations={Path(args.mutations).name}",
            genomes=an,
            ac_description="Input calls (samples) with this ALT",
            an_description="Genomes of the input calls",
        )
        if mismatches:
            texts[out / "ref_mismatches.tsv"] = "chrom\tpos_1based\tref\tseen\twhere\n" + "".join(
                f"{s.chrom}\t{s.pos + 1}\t{s.ref}\t{seen}\tline {s.line}\n" for s, seen in mismatches
            )
        report.append(
            f"mutations: {len(snvs)} SNVs read"
            + "".join(f", {n} skipped ({why})" for why, n in skipped.items())
            + f"; REF checked against {against} for {checked}: {checked - len(mismatches)} match, "
            f"{len(mismatches)} differ; {off} not checkable (chromosome not in {against}); "
            f"{len(inside)} inside the regions ("
            + ", ".join(f"{name} {per_split[name]}" for name in SPLITS)
            + ")"
        )
    write_outputs(texts)
    report += [f"wrote {path}" for path in texts]
    print("\n".join(report))
    return {path.name: path for path in texts}


def _region_summary(
    regions: Sequence[PreparedRegion], dropped: Sequence[PreparedRegion], splits: Sequence[str], block: int
) -> str:
    labels = Counter(r.label for r in regions if r.label is not None)
    lines = [
        f"regions: {len(regions)} records, {sum(len(r.tokens) for r in regions):,} bp"
        + (f" (labels: {', '.join(f'{k}: {v}' for k, v in sorted(labels.items()))})" if labels else "")
    ]
    if dropped:
        lines.append(
            f"dropped {len(dropped)} records overlapping an earlier one: "
            + ", ".join(r.id for r in dropped[:5])
            + (" ..." if len(dropped) > 5 else "")
        )
    parts = []
    for name in SPLITS:
        chosen = [r for r, s in zip(regions, splits, strict=True) if s == name]
        parts.append(f"{name} {len(chosen)} records / {sum(len(r.tokens) for r in chosen):,} bp")
    lines.append(
        f"split by {block:,}-bp genome blocks: " + ", ".join(parts) + "; splits do not overlap (checked)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
