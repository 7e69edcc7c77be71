"""Seeded simulation of somatic point mutations on real sequence.

Rate model, per base of the input:

1. the mix of COSMIC SBS signatures gives a probability P(c, a) to each of the 96 channels
   (pyrimidine context c, alt a);
2. dividing by the opportunity O(c) (bases of the input in context c, either strand) gives a
   per-base rate P(c, a) / O(c) for each alt, so the expected spectrum of the simulated
   mutations is the mix itself; a base's total rate is the sum over its 3 alts;
3. a base whose neighbour is unknown (N, or the first / last base of a record) gets the
   opportunity-weighted mean over the possible neighbours; an N base has rate 0;
4. optionally (`regional_cv` > 0) multiplied by a regional factor: a smooth log-normal
   field over genome position with length scale `regional_scale` (see `regional_factor`);
5. rates are scaled so that their mean over the non-N bases is `mean_rate`, then multiplied
   by `factor` inside motif hits (the hotspots).

The rate is a per-genome probability. Each of `genomes` genomes then carries, at each base,
no mutation or one alt allele (a categorical draw: rate split over the alts in proportion to
their channel rates). Counts of carriers are drawn per base as Binomial(genomes, rate), then
split over alts by a Multinomial: the same distribution as one Bernoulli per genome.
Record i draws from `SeedSequence(seed, spawn_key=(i,))`, so it does not depend on the others.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from scipy import optimize

from seqmodel.errors import ParameterError, SeqmodelInputError
from seqmodel.io import alphabet, signatures
from seqmodel.io.atomic import atomic_texts
from seqmodel.io.fasta import FastaRecord
from seqmodel.io.motifs import MotifHit, PositionWeightMatrix
from seqmodel.io.vcf import write_vcf

UNKNOWN = 4  # a neighbour that is N or beyond the record end
# Context class of a base on the reference strand: left * 20 + base * 5 + right, with the
# neighbours in 0..4 (A, C, G, T, unknown) and the base in 0..3; -1 for an N base.
N_CLASSES = 100
NO_CLASS = -1
RATE_FORMAT = "%.6g"


@dataclass(frozen=True)
class Hotspot:
    """Bases inside a hit of `pwm` (log2-odds score >= `threshold`, either strand) have their
    rate multiplied by `factor`."""

    pwm: PositionWeightMatrix
    threshold: float
    factor: float


@dataclass(frozen=True)
class Mutations:
    """Simulated mutations, one row per (site, alt), ordered by record, offset, alt.

    All `(M,)`: `record` index, 0-based `offset` in the record, `ref` and `alt` token ids,
    `carriers` the number of genomes carrying the alt (>= 1).
    """

    record: np.ndarray
    offset: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    carriers: np.ndarray

    def __len__(self) -> int:
        return len(self.record)


@dataclass(frozen=True)
class Simulation:
    """A simulation: per record `rates` `(L,)` (per-genome probability, 0 at N), `in_hotspot`
    `(L,)` bool and the motif `hits`; the `mutations` over `genomes` genomes."""

    records: list[FastaRecord]
    rates: list[np.ndarray]
    in_hotspot: list[np.ndarray]
    hits: list[list[MotifHit]]
    mutations: Mutations
    genomes: int
    hotspot: Hotspot | None


def context_classes(tokens: np.ndarray) -> np.ndarray:
    """`(L,)` int8 reference-strand context class of each base (see `N_CLASSES`)."""
    tokens = np.asarray(tokens).astype(np.int16)
    padded = np.concatenate([[UNKNOWN], np.minimum(tokens, UNKNOWN), [UNKNOWN]])
    classes = padded[:-2] * 20 + padded[1:-1] * 5 + padded[2:]
    return np.where(tokens < alphabet.N, classes, NO_CLASS).astype(np.int8)


def class_alt_rates(spectrum: np.ndarray, opportunity: np.ndarray) -> np.ndarray:
    """Unscaled rate of each alt for each context class.

    Parameters
    ----------
    spectrum : `(96,)` channel probabilities of the signature mix.
    opportunity : `(32,)` number of bases in each pyrimidine context.

    Returns
    -------
    `(100, 4)` rate per reference-strand alt token (0 for the reference base itself); a class
    with an unknown neighbour pools the channels and opportunities of its possible neighbours.
    """
    numerator = np.zeros((5, 4, 5, 4))
    denominator = np.zeros((5, 4, 5))
    for left in range(4):
        for base in range(4):
            for right in range(4):
                trinucleotide = np.array([left, base, right], dtype=np.uint8)
                context = int(signatures.pyrimidine_contexts(trinucleotide)[1])
                alts = np.array([a for a in range(4) if a != base])
                channels = signatures.channel_of(np.full(3, context), alts, np.full(3, base))
                for pooled_left in (left, UNKNOWN):
                    for pooled_right in (right, UNKNOWN):
                        numerator[pooled_left, base, pooled_right, alts] += spectrum[channels]
                        denominator[pooled_left, base, pooled_right] += opportunity[context]
    rates = np.divide(
        numerator,
        denominator[..., None],
        out=np.zeros_like(numerator),
        where=denominator[..., None] > 0,
    )
    return rates.reshape(N_CLASSES, 4)


def record_layout(
    records: Sequence[FastaRecord], path: str | os.PathLike | None = None
) -> list[tuple[str, int]]:
    """(chrom, 0-based start) of each record in the output coordinates.

    A record whose id is `chrom:start-end` (0-based, bedtools getfasta style) sits at `start`
    on `chrom`; any other record is its own contig starting at 0. Raises SeqmodelInputError
    (naming `path` and the record) when an id's interval disagrees with the sequence length
    or two records overlap: a site cannot carry two different simulated outcomes.
    """
    layout = []
    spans: dict[str, list[tuple[int, int, FastaRecord]]] = {}
    for record in records:
        interval = record.genome_interval
        chrom, start = (record.id, 0) if interval is None else interval[:2]
        if interval is not None and interval[2] - interval[1] != len(record):
            raise SeqmodelInputError(
                path,
                f"record {record.index + 1} ({record.id})",
                f"the id spans {interval[2] - interval[1]} bp but the sequence has {len(record)}",
            )
        layout.append((chrom, start))
        spans.setdefault(chrom, []).append((start, start + len(record), record))
    for rows in spans.values():
        rows.sort(key=lambda row: (row[0], row[1]))
        for (_, end, first), (start, _, second) in zip(rows, rows[1:], strict=False):
            if start < end:
                raise SeqmodelInputError(
                    path,
                    f"record {second.index + 1} ({second.id})",
                    f"overlaps record {first.index + 1} ({first.id}) in genome coordinates; "
                    "remove one of them",
                )
    return layout


# --- regional factor ----------------------------------------------------------------------------

REGIONAL_GRID = 20  # grid points of the regional field per length scale
REGIONAL_STREAM = 0x5E6107  # the regional field's random stream, apart from the mutation draws
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def regional_window_variance(log_variance: float) -> float:
    """Variance of the mean, over a window one length scale long, of exp(g - v/2), where g is
    a stationary Gaussian field of variance v = `log_variance` and correlation exp(-d^2 / 2)
    at distance d (in length scales): the integral over 0 <= d <= 1 of 2 (1 - d)
    (exp(v exp(-d^2 / 2)) - 1)."""
    d = (_NODES + 1) / 2  # Gauss-Legendre nodes on [0, 1]
    return float(np.sum(_WEIGHTS / 2 * 2 * (1 - d) * np.expm1(log_variance * np.exp(-(d**2) / 2))))


def regional_log_sd(cv: float) -> float:
    """Standard deviation of the log regional factor whose mean over windows of one length
    scale has coefficient of variation `cv`."""
    if cv <= 0:
        return 0.0
    upper = math.log1p(cv**2) * math.exp(0.5)  # the correlation within a window is >= exp(-1/2)
    variance = optimize.brentq(lambda v: regional_window_variance(v) - cv**2, 0.0, upper, xtol=1e-14)
    return math.sqrt(variance)


def regional_factor(chrom: str, positions: np.ndarray, cv: float, scale: float, seed: int) -> np.ndarray:
    """The regional rate multiplier `(n,)` at 0-based `positions` of `chrom`.

    exp(s g(x) - s^2 / 2): g is a Gaussian field of unit variance with squared-exponential
    correlation exp(-d^2 / (2 scale^2)) (white noise on a grid of `REGIONAL_GRID` points per
    `scale`, smoothed by a Gaussian kernel, interpolated linearly between grid points); its
    mean is 1, and s is chosen so that its mean over windows of `scale` bp has coefficient of
    variation `cv` (the way a regional rate is measured, e.g. counts per 1-Mb window). The field
    depends only on (`seed`, `chrom`, position), so records sharing a chromosome share it and
    a subset of the records sees the same values.
    """
    positions = np.asarray(positions, dtype=np.float64)
    sd = regional_log_sd(cv)
    if sd == 0 or len(positions) == 0:
        return np.ones(len(positions))
    spacing = scale / REGIONAL_GRID
    sigma = REGIONAL_GRID / math.sqrt(2)  # kernel sd in grid steps: correlation exp(-d^2 / (4 sigma^2))
    half = math.ceil(4 * sigma)
    last = math.ceil(float(positions.max()) / spacing) + 1
    entropy = [seed, REGIONAL_STREAM, zlib.crc32(chrom.encode())]
    # The i-th draw is grid point i - half whatever the length, so the field does not depend on
    # how far along the chromosome the records reach.
    noise = np.random.default_rng(np.random.SeedSequence(entropy)).standard_normal(last + 1 + 2 * half)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    field = np.convolve(noise, kernel / np.sqrt(np.sum(kernel**2)), mode="valid")  # grid points 0..last
    log_factor = sd * np.interp(positions / spacing, np.arange(last + 1), field) - sd**2 / 2
    return np.exp(log_factor)


def simulate(
    records: Sequence[FastaRecord],
    spectrum: np.ndarray,
    *,
    mean_rate: float,
    genomes: int,
    seed: int,
    hotspot: Hotspot | None = None,
    regional_cv: float = 0.0,
    regional_scale: float = 1_000_000,
    regional_seed: int | None = None,
) -> Simulation:
    """Simulate mutations on `records` (see the module docstring for the model).

    Parameters
    ----------
    spectrum : `(96,)` channel probabilities of the signature mix (`SignatureTable.mix`).
    mean_rate : mean per-genome mutation probability per non-N base, before hotspots.
    genomes : number of simulated genomes.
    seed : seed of the numpy Generator.
    hotspot : optional motif hotspot (any factor > 0).
    regional_cv : coefficient of variation of the regional factor over windows of
        `regional_scale` bp (`regional_factor`); 0 (default) leaves it out.
    regional_scale : length scale of the regional factor, bp.
    regional_seed : seed of the regional factor (default: `seed`). Records named
        `chrom:start-end` take it at their genome position; any other record is its own contig
        from 0. The factor multiplies the rate before scaling to `mean_rate`, so the mean rate
        stays `mean_rate`; the true rate includes it.
    """
    if not 0 < mean_rate < 1:
        raise ParameterError("mean_rate", f"{mean_rate} must be in (0, 1)")
    if genomes < 1:
        raise ParameterError("genomes", f"{genomes} must be >= 1")
    if seed < 0:
        raise ParameterError("seed", f"{seed} must be >= 0")
    if hotspot is not None and not hotspot.factor > 0:
        raise ParameterError("motif_factor", f"{hotspot.factor} must be > 0")
    if not (math.isfinite(regional_cv) and regional_cv >= 0):
        raise ParameterError("regional_cv", f"{regional_cv} must be >= 0")
    if not (math.isfinite(regional_scale) and regional_scale > 0):
        raise ParameterError("regional_scale", f"{regional_scale} must be > 0")
    classes = [context_classes(record.tokens) for record in records]
    valid = sum(int((c >= 0).sum()) for c in classes)
    if valid == 0:
        raise SeqmodelInputError(None, None, "the sequences hold no A, C, G or T")
    opportunity = signatures.context_counts(
        np.concatenate([signatures.pyrimidine_contexts(r.tokens) for r in records])
    )
    alt_rates = class_alt_rates(np.asarray(spectrum, dtype=np.float64), opportunity)
    class_rate = np.append(alt_rates.sum(axis=1), 0.0)  # index -1 (N) reads the 0
    unscaled = [class_rate[c] for c in classes]
    if regional_cv > 0:
        region_seed = seed if regional_seed is None else regional_seed
        layout = record_layout(records)
        factors = [
            regional_factor(chrom, start + np.arange(len(rate)), regional_cv, regional_scale, region_seed)
            for rate, (chrom, start) in zip(unscaled, layout, strict=True)
        ]
        unscaled = [rate * factor for rate, factor in zip(unscaled, factors, strict=True)]
    scale = mean_rate * valid / sum(float(u.sum()) for u in unscaled)
    alt_split = np.divide(
        alt_rates,
        alt_rates.sum(axis=1, keepdims=True),
        out=np.zeros_like(alt_rates),
        where=alt_rates.sum(axis=1, keepdims=True) > 0,
    )

    rates, in_hotspot, hits = [], [], []
    for record, base_rate in zip(records, unscaled, strict=True):
        rate = base_rate * scale
        if hotspot is None:
            mask = np.zeros(len(record), dtype=bool)
            record_hits: list[MotifHit] = []
        else:
            mask = hotspot.pwm.hit_mask(record.tokens, hotspot.threshold)
            record_hits = hotspot.pwm.hits(record.tokens, hotspot.threshold)
            rate = np.where(mask, rate * hotspot.factor, rate)
        rates.append(rate)
        in_hotspot.append(mask)
        hits.append(record_hits)
    highest = max(float(r.max()) for r in rates)
    if highest > 1:
        raise ParameterError(
            "mean_rate",
            f"the highest per-base rate is {highest:.3g} > 1; lower the mean rate or the motif factor",
        )

    parts = []
    for index, (record, rate, record_classes) in enumerate(zip(records, rates, classes, strict=True)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        mutated = rng.binomial(genomes, rate)
        sites = np.flatnonzero(mutated)
        split = rng.multinomial(mutated[sites], alt_split[record_classes[sites]])
        site_index, alt = np.nonzero(split)
        offset = sites[site_index]
        parts.append(
            (
                np.full(len(offset), index, dtype=np.int64),
                offset.astype(np.int64),
                record.tokens[offset],
                alt.astype(np.uint8),
                split[site_index, alt].astype(np.int64),
            )
        )
    mutations = Mutations(*(np.concatenate(column) for column in zip(*parts, strict=True)))
    return Simulation(list(records), rates, in_hotspot, hits, mutations, genomes, hotspot)


def mutation_spectrum(simulation: Simulation, outside_hotspots: bool = False) -> np.ndarray:
    """`(96,)` number of simulated mutations (carriers summed) per channel; mutations without a
    full trinucleotide context (record ends, next to N) are left out, and with
    `outside_hotspots` so are those inside motif hits."""
    mutations = simulation.mutations
    record_starts = np.cumsum([0] + [len(r) for r in simulation.records])
    flat = record_starts[mutations.record] + mutations.offset
    all_contexts = np.concatenate([signatures.pyrimidine_contexts(r.tokens) for r in simulation.records])
    contexts = all_contexts[flat]
    keep = contexts >= 0
    if outside_hotspots:
        keep &= ~np.concatenate(simulation.in_hotspot)[flat]
    channels = signatures.channel_of(contexts[keep], mutations.alt[keep], mutations.ref[keep])
    return np.bincount(channels, weights=mutations.carriers[keep], minlength=signatures.N_CHANNELS)


@dataclass(frozen=True)
class MixCheck:
    """The NNLS refit of a simulated spectrum to the signatures of the requested mix.

    `weights_cosine` compares the refit weights with the requested ones (both summing to 1);
    `spectrum_cosine` the simulated spectrum with the requested mix's spectrum.
    """

    requested: dict[str, float]
    fit: signatures.SignatureFit
    mutations: int
    weights_cosine: float
    spectrum_cosine: float


def check_mix(
    simulation: Simulation,
    table: signatures.SignatureTable,
    mix: Mapping[str, float],
    outside_hotspots: bool = False,
) -> MixCheck:
    """Refit the simulated spectrum (optionally without the mutations in motif hits, whose
    contexts follow the motif, not the mix) to the mix's signatures by NNLS."""
    spectrum = mutation_spectrum(simulation, outside_hotspots)
    names = tuple(mix)
    fit = signatures.fit_signatures(spectrum, table, names)
    total = sum(mix.values())
    requested = {name: mix[name] / total for name in names}
    return MixCheck(
        requested,
        fit,
        int(spectrum.sum()),
        signatures.cosine(np.array(list(requested.values())), np.array([fit.weights[n] for n in names])),
        signatures.cosine(spectrum, table.mix(mix)),
    )


def mutated_fraction(
    simulation: Simulation, records: Sequence[int] | None = None
) -> dict[str, tuple[float, int]]:
    """Fraction of non-N bases mutated in at least one genome, over `records` (indices; default
    all): {"all" | "hotspot" | "elsewhere": (fraction, number of non-N bases)}."""
    chosen = range(len(simulation.records)) if records is None else records
    mutations = simulation.mutations
    bounds = np.searchsorted(mutations.record, np.arange(len(simulation.records) + 1))
    counts = {"all": [0, 0], "hotspot": [0, 0], "elsewhere": [0, 0]}
    for index in chosen:
        record = simulation.records[index]
        valid = record.tokens < alphabet.N
        mutated = np.zeros(len(record), dtype=bool)
        mutated[mutations.offset[bounds[index] : bounds[index + 1]]] = True
        hot = simulation.in_hotspot[index]
        for key, where in (("all", valid), ("hotspot", valid & hot), ("elsewhere", valid & ~hot)):
            counts[key][0] += int((mutated & where).sum())
            counts[key][1] += int(where.sum())
    return {key: (m / n if n else 0.0, n) for key, (m, n) in counts.items()}


def _contig_order(layout: Sequence[tuple[str, int]]) -> list[str]:
    # Plain byte order of names: what `sort -k1,1 -k2,2n` and bedGraphToBigWig expect.
    return sorted({chrom for chrom, _ in layout})


def write_mutations_vcf(out: str | os.PathLike | TextIO, simulation: Simulation, source: str) -> int:
    """VCF 4.2 of the mutations (`write_vcf`): one line per (site, alt),
    `INFO=AC=<carriers>;AN=<genomes>`, sorted by contig name (byte order) then POS then ALT;
    `source` becomes the `##source=` line. Returns the number of lines."""
    layout = record_layout(simulation.records)
    # A plain record is a whole contig of known length, unless interval records share its name.
    interval_chroms = {r.genome_interval[0] for r in simulation.records if r.genome_interval}
    lengths = {
        r.id: len(r) for r in simulation.records if r.genome_interval is None and r.id not in interval_chroms
    }
    contigs = {chrom: lengths.get(chrom) for chrom in _contig_order(layout)}
    mutations = simulation.mutations
    chroms = [layout[r][0] for r in mutations.record.tolist()]
    starts = np.array([layout[r][1] for r in mutations.record.tolist()], dtype=np.int64)
    rows = zip(
        chroms,
        (starts + mutations.offset).tolist(),
        [alphabet.BASES[t] for t in mutations.ref.tolist()],
        [alphabet.BASES[t] for t in mutations.alt.tolist()],
        mutations.carriers.tolist(),
        strict=True,
    )
    return write_vcf(
        out,
        rows,
        contigs,
        source,
        genomes=simulation.genomes,
        ac_description="Simulated genomes carrying the ALT",
        an_description="Simulated genomes (one allele each)",
    )


def bedgraph_text(simulation: Simulation) -> str:
    """bedGraph of the true rate (0-based half-open, no header): N bases left out, runs of
    equal printed value (`%.6g`) within a record merged; sorted by contig name then start."""
    layout = record_layout(simulation.records)
    order = sorted(range(len(layout)), key=lambda i: (layout[i][0].encode(), layout[i][1]))
    lines = []
    for index in order:
        chrom, start = layout[index]
        valid = simulation.records[index].tokens < alphabet.N
        values = np.char.mod(RATE_FORMAT, simulation.rates[index])
        values[~valid] = ""
        change = np.flatnonzero(values[1:] != values[:-1]) + 1
        run_starts = np.concatenate([[0], change])
        run_ends = np.concatenate([change, [len(values)]])
        for run_start, run_end in zip(run_starts, run_ends, strict=True):
            if values[run_start]:
                lines.append(f"{chrom}\t{start + run_start}\t{start + run_end}\t{values[run_start]}")
    return "".join(line + "\n" for line in lines)


def hits_bed_text(simulation: Simulation) -> str:
    """BED6 of the hotspot motif hits: name = motif id, score = relative score x 1000 rounded
    (0 = worst possible window, 1000 = best), strand; sorted by contig name, start, strand."""
    if simulation.hotspot is None:
        raise ValueError("the simulation has no motif hotspot")
    pwm = simulation.hotspot.pwm
    layout = record_layout(simulation.records)
    rows = []
    for (chrom, start), hits in zip(layout, simulation.hits, strict=True):
        for hit in hits:
            relative = (hit.score - pwm.min_score) / (pwm.max_score - pwm.min_score)
            rows.append((chrom, start + hit.start, start + hit.end, hit.strand, relative))
    rows.sort(key=lambda row: (row[0].encode(), row[1], row[3]))
    return "".join(
        f"{chrom}\t{s}\t{e}\t{pwm.motif_id}\t{round(1000 * relative)}\t{strand}\n"
        for chrom, s, e, strand, relative in rows
    )


def check_output_paths(paths: Sequence[str | os.PathLike]) -> None:
    """Raise SeqmodelInputError unless every path can be written: its folder exists and the
    path is not a folder."""
    for path in paths:
        if not Path(path).parent.is_dir():
            raise SeqmodelInputError(path, None, "output directory does not exist")
        if Path(path).is_dir():
            raise SeqmodelInputError(path, None, "output path is a directory")


def write_outputs(texts: Mapping[str | os.PathLike, str | Callable[[TextIO], object]]) -> None:
    """Write each output: a text, or a function that writes it to the stream it is given (BGZF
    when the name ends in `.gz`, deterministic bytes).

    Every file is first written to a temporary name in its directory and all are renamed at
    the end (`atomic_texts`), so a failure leaves no partial output.
    """
    check_output_paths(list(texts))
    try:
        with atomic_texts(list(texts)) as handles:
            for handle, content in zip(handles, texts.values(), strict=True):
                if callable(content):
                    content(handle)
                else:
                    handle.write(content)
    except OSError as error:
        raise SeqmodelInputError(error.filename, None, f"cannot write ({error.strerror})") from None
