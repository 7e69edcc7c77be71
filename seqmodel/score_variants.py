"""`seqmodel-score-variants`: what a trained model predicts for each SNV of a VCF.

    seqmodel-score-variants ckpt_path=RUN/checkpoints/best.ckpt vcf=variants.vcf.gz genome=genome.fa.gz \\
        output=scores.tsv
    seqmodel-score-variants ckpt_path=... vcf=... genome=... output=scores.vcf.gz score.window=100

Every SNV the project's VCF reader yields (`seqmodel.io.vcf`: multi-allelic records split, one
row per ALT; indels, MNPs, symbolic alleles and FILTERed records skipped and counted) is scored
on the reference genome (read through `seqmodel.io.genome`, indexed where a `.fai` is there).

The model's input for a site is one window of its training length (`TrainedModel.window`, `W`)
centred on the site (`W // 2` bases before it), moved inside the chromosome at its ends (a
chromosome shorter than `W` is read whole and padded with N, as predict pads a short record).
The ALT input is the same window with the site's base replaced. Values:

- `risk`: the per-base head's predicted rate at the site, on the reference sequence. The scale
  is that of seqmodel-predict's track: the **per-genome mutation probability of the base**
  (`TrainedModel.rate`). It is what seqmodel-predict writes at that base for the same window
  (a FASTA record holding exactly that window).
- `delta_risk_window`: ALT minus REF of the predicted rates summed over the bases within
  `score.window` of the site (the site itself included, so `2 * score.window + 1` bases away
  from chromosome ends; N bases, which get no prediction, left out), in the same per-genome
  probability units. `score.window` must fit in the model's window (`<= (W - 1) // 2`).
- `delta_logodds_<class>` (one per class of the pooled head): ALT minus REF of the class's
  log-odds, `ln(p / (1 - p))` of the window's class probability `p`.

With `predict.rc_average=true` (the default, as for seqmodel-predict) the forward and the
reverse-complement predictions are averaged as predict averages them: the per-base rates base
by base (the reverse strand's flipped back), the class probabilities before the log-odds are
taken. `predict.device` chooses the device; the other keys of the `predict:` block are not used.

REF is checked against the genome. A site whose REF differs (or that lies past the end of its
chromosome) is not scored: it is counted, the first few are logged, and the count is in the
end-of-run summary; when more than `score.max_ref_mismatch` of the checked sites differ the run
stops with a one-line error (a wrong genome build or coordinates) and writes nothing. Sites on
chromosomes the genome does not have (names match with or without `chr`, see
`seqmodel.io.genome`) are counted, reported and skipped; a VCF none of whose SNVs is on the
genome's chromosomes is an error.

Outputs (written atomically: nothing is left at `output` when the run fails), one row per
scored SNV, in the order of the VCF, chromosome names as the VCF spells them:

- `.tsv` / `.tsv.gz` (BGZF): `##` lines describing the columns and their scale, then the
  header `chrom pos ref alt risk delta_risk_window delta_logodds_<class>...` (`pos` 1-based as
  in VCF); read it with e.g. `pandas.read_csv(path, sep="\\t", comment="#")`;
- `.vcf` / `.vcf.gz` (BGZF): a VCF of the SNVs (`AC`: the carriers the input gave, see
  `seqmodel.io.vcf`) with the scores as INFO fields `SM_RISK`, `SM_DRISK` and `SM_DLO_<class>`
  (the class name with characters a VCF key cannot hold replaced by `_`), each described by its
  `##INFO` header line. It is sorted (and `tabix`-indexable) when the input is.

Memory stays bounded whatever the VCF's size: the VCF is streamed, `score.sort_buffer` SNVs at
a time are scored in genome order (so an unsorted VCF reads each chromosome at most once per
buffer; the genome reader keeps one chromosome) and written back in input order, and the model
runs on `score.batch_size` variants at a time (each costs at most 2 windows, REF and ALT, on
each strand; the REF window is shared by the ALT alleles of a site).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from seqmodel.config import CONFIG_DIR
from seqmodel.data.batches import reverse_valid
from seqmodel.errors import ParameterError, SeqmodelInputError, run_cli
from seqmodel.io import alphabet
from seqmodel.io.atomic import atomic_text
from seqmodel.io.vcf import InfoField, Snv, read_vcf, write_vcf
from seqmodel.models.checkpoint import TrainedModel

log = logging.getLogger(__name__)

USAGE = "seqmodel-score-variants ckpt_path=... vcf=... genome=... output=scores.tsv|scores.vcf.gz"
TSV_SUFFIXES = (".tsv", ".tsv.gz")
VCF_SUFFIXES = (".vcf", ".vcf.gz")
MISMATCH_EXAMPLES = 10  # REF mismatches logged one by one
WRITE_BATCH = 4096  # TSV rows joined per write
# Library parameter -> the config key that sets it (for one-line errors).
FLAGS = {
    "span": "score.window",
    "batch_size": "score.batch_size",
    "max_ref_mismatch": "score.max_ref_mismatch",
    "sort_buffer": "score.sort_buffer",
    "output": "output",
}


# --- the model on windows around sites ---------------------------------------------------------------


def site_window(pos: int, chrom_length: int, window: int) -> tuple[int, int]:
    """`[start, end)` of the model input for the site at 0-based `pos`: `window` bases with the site
    at `window // 2`, moved inside the chromosome at its ends (the whole chromosome when shorter)."""
    if chrom_length <= window:
        return 0, chrom_length
    start = min(max(pos - window // 2, 0), chrom_length - window)
    return start, start + window


@dataclass
class Scores:
    """The scores of `n` variants: `risk` `(n,)`, `delta_risk` `(n,)` and `delta_logodds` `(n, K)`,
    float64."""

    risk: np.ndarray
    delta_risk: np.ndarray
    delta_logodds: np.ndarray


class VariantScorer:
    """The model's outputs for REF and ALT windows (see the module docstring for what is scored).

    span: the bases within `span` of the site enter `delta_risk`; it must fit in the model's
    window (`<= (window - 1) // 2`).
    """

    def __init__(
        self,
        trained: TrainedModel,
        span: int = 50,
        rc_average: bool = True,
        device: str | torch.device = "cpu",
    ):
        if span < 0:
            raise ParameterError("span", f"must be at least 0, got {span}")
        if span > (trained.window - 1) // 2:
            raise ParameterError(
                "span",
                f"{span} bases each side of the site need a model window of at least {2 * span + 1} bases; "
                f"this checkpoint's is {trained.window}",
            )
        self.trained = trained
        self.window = trained.window
        self.span = span
        self.rc_average = rc_average
        self.device = torch.device(device)
        self.network = trained.network.to(self.device).eval()

    @torch.inference_mode()
    def _forward(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """Per-base rates `(B, W)` float32 and class log-probabilities `(B, K)` float64 (on the CPU)."""
        x = torch.from_numpy(tokens.astype(np.int64)).to(self.device)
        n = torch.from_numpy(lengths.astype(np.int64)).to(self.device)
        base_logits, class_logits = self.network(x, x < alphabet.N, n)
        return (
            self.trained.rate(base_logits).cpu().numpy(),
            torch.log_softmax(class_logits.double(), -1).cpu(),
        )

    def predict(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-base rates `(B, W)` float32 (as seqmodel-predict computes them) and class log-odds
        `(B, K)` float64 of token windows `(B, W)` holding `lengths` real bases each."""
        rates, log_p = self._forward(tokens, lengths)
        if self.rc_average:
            rc_rates, rc_log_p = self._forward(
                reverse_valid(alphabet.COMPLEMENT_LUT[tokens], lengths), lengths
            )
            rates = (rates + reverse_valid(rc_rates, lengths)) / 2
            # The mean of the two strands' probabilities, in log space.
            log_p = torch.logaddexp(log_p, rc_log_p) - np.log(2.0)
        return rates, log_odds(log_p).numpy()

    def score(
        self,
        refs: np.ndarray,
        ref_lengths: np.ndarray,
        ref_of: np.ndarray,
        sites: np.ndarray,
        alts: np.ndarray,
    ) -> Scores:
        """Score `n` variants.

        refs: `(U, W)` uint8 reference windows (N-padded past `ref_lengths`); ref_of: `(n,)` the
        window of each variant; sites: `(n,)` the site's offset in it; alts: `(n,)` ALT token ids.
        """
        n = len(ref_of)
        rows = np.arange(n)
        alt_windows = refs[ref_of].copy()
        alt_windows[rows, sites] = alts
        lengths = ref_lengths[ref_of]
        rates, logodds = self.predict(
            np.concatenate([refs, alt_windows]), np.concatenate([ref_lengths, lengths])
        )
        ref_rates, alt_rates = rates[: len(refs)][ref_of], rates[len(refs) :]
        positions = np.arange(refs.shape[1])[None, :]
        counted = (
            (np.abs(positions - sites[:, None]) <= self.span)
            & (positions < lengths[:, None])
            & (alt_windows < alphabet.N)
        )
        difference = alt_rates.astype(np.float64) - ref_rates.astype(np.float64)
        return Scores(
            risk=ref_rates[rows, sites].astype(np.float64),
            delta_risk=np.where(counted, difference, 0.0).sum(axis=1),
            delta_logodds=logodds[len(refs) :] - logodds[: len(refs)][ref_of],
        )


def log_odds(log_p: torch.Tensor) -> torch.Tensor:
    """`(B, K)` log-probabilities -> each class's `ln(p / (1 - p))`, computed in log space."""
    classes = log_p.shape[-1]
    if classes < 2:
        return log_p.new_zeros(log_p.shape[0], 0)
    others = (
        log_p[:, None, :]
        .expand(-1, classes, -1)
        .masked_fill(torch.eye(classes, dtype=torch.bool), float("-inf"))
    )
    return log_p - torch.logsumexp(others, dim=-1)


# --- sites from the VCF, checked against the genome ----------------------------------------------------


@dataclass
class Tally:
    """What became of the SNVs the reader of `path` yielded."""

    path: str = "VCF"
    scored: int = 0
    checked: int = 0  # SNVs on the genome's chromosomes (their REF was checked)
    mismatched: int = 0
    first_mismatch: tuple[Snv, str] | None = None
    missing: Counter = field(default_factory=Counter)  # VCF chrom -> SNVs on it (not in the genome)

    def mismatch(self, snv: Snv, seen: str) -> None:
        self.mismatched += 1
        if self.first_mismatch is None or snv.line < self.first_mismatch[0].line:
            self.first_mismatch = (snv, seen)
        if self.mismatched <= MISMATCH_EXAMPLES:
            more = (
                f" (only the first {MISMATCH_EXAMPLES} are logged)"
                if self.mismatched == MISMATCH_EXAMPLES
                else ""
            )
            log.warning(
                "%s line %d: REF %s at %s:%d, the genome has %s: not scored%s",
                self.path, snv.line, snv.ref, snv.chrom, snv.pos + 1, seen, more,
            )  # fmt: skip


@dataclass
class Site:
    """A checked SNV: its index in the buffer, the genome's chromosome name and the model window."""

    index: int
    snv: Snv
    name: str
    start: int
    end: int


def chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class SiteScorer:
    """Scores the SNVs of a stream (read from `source`, for the log), `sort_buffer` at a time, in
    genome order; rows come back in input order as `(snv, risk, delta_risk, delta_logodds (K,))`."""

    def __init__(self, genome, scorer: VariantScorer, batch_size: int, sort_buffer: int, source: str = "VCF"):
        if batch_size < 1:
            raise ParameterError("batch_size", f"must be at least 1, got {batch_size}")
        if sort_buffer < 1:
            raise ParameterError("sort_buffer", f"must be at least 1, got {sort_buffer}")
        self.genome, self.scorer = genome, scorer
        self.batch_size, self.sort_buffer = batch_size, sort_buffer
        self.tally = Tally(source)

    def rows(self, snvs: Iterable[Snv]) -> Iterator[tuple[Snv, float, float, np.ndarray]]:
        for buffer in chunks(snvs, self.sort_buffer):
            results: dict[int, tuple[float, float, np.ndarray]] = {}
            batch: list[Site] = []
            for site in self._checked(buffer):
                batch.append(site)
                if len(batch) == self.batch_size:
                    results.update(self._score(batch))
                    batch = []
            if batch:
                results.update(self._score(batch))
            for index in sorted(results):
                yield (buffer[index], *results[index])

    def _checked(self, buffer: list[Snv]) -> Iterator[Site]:
        """The SNVs of `buffer` on the genome's chromosomes whose REF matches the genome, in genome
        order (each chromosome is read once)."""
        genome, tally, window = self.genome, self.tally, self.scorer.window
        placed = []
        for index, snv in enumerate(buffer):
            name = genome.resolve(snv.chrom)
            if name is None:
                tally.missing[snv.chrom] += 1
            else:
                placed.append((name, snv.pos, index))
        placed.sort()
        tally.checked += len(placed)
        for name, pos, index in placed:
            snv, length = buffer[index], genome.lengths[name]
            if pos >= length:
                tally.mismatch(snv, f"no base (past the end of {name}, length {length:,})")
                continue
            seen = alphabet.BASES[int(genome.fetch(name, pos, pos + 1)[0])]
            if seen != snv.ref:
                tally.mismatch(snv, seen)
                continue
            yield Site(index, snv, name, *site_window(pos, length, window))

    def _score(self, batch: list[Site]) -> dict[int, tuple[float, float, np.ndarray]]:
        window = self.scorer.window
        starts: dict[tuple[str, int], int] = {}  # (chromosome, pos) -> its REF window
        refs, lengths = [], []
        ref_of, sites, alts = [], [], []
        for site in batch:
            key = (site.name, site.snv.pos)
            if key not in starts:
                starts[key] = len(refs)
                tokens = np.full(window, alphabet.N, dtype=np.uint8)
                tokens[: site.end - site.start] = self.genome.fetch(site.name, site.start, site.end)
                refs.append(tokens)
                lengths.append(site.end - site.start)
            ref_of.append(starts[key])
            sites.append(site.snv.pos - site.start)
            alts.append(alphabet.BASES.index(site.snv.alt))
        scores = self.scorer.score(
            np.stack(refs),
            np.array(lengths),
            np.array(ref_of),
            np.array(sites),
            np.array(alts, dtype=np.uint8),
        )
        self.tally.scored += len(batch)
        return {
            site.index: (float(scores.risk[i]), float(scores.delta_risk[i]), scores.delta_logodds[i])
            for i, site in enumerate(batch)
        }


# --- outputs -------------------------------------------------------------------------------------------


def output_kind(output: str) -> str:
    """`tsv` or `vcf`, from the output's name."""
    name = Path(output).name.lower()
    if name.endswith(TSV_SUFFIXES):
        return "tsv"
    if name.endswith(VCF_SUFFIXES):
        return "vcf"
    raise ParameterError("output", f"use a .tsv, .tsv.gz, .vcf or .vcf.gz name, got {output}")


def info_ids(classes: list[str]) -> list[str]:
    """The `SM_DLO_<class>` INFO key of each class: characters a VCF key cannot hold become `_`;
    names that then coincide get their class index appended."""
    ids = [f"SM_DLO_{re.sub(r'[^0-9A-Za-z_.]', '_', str(name))}" for name in classes]
    repeated = {key for key, count in Counter(ids).items() if count > 1}
    return [f"{key}_{i}" if key in repeated else key for i, key in enumerate(ids)]


def descriptions(span: int, window: int, rc_average: bool) -> tuple[str, str, str]:
    """What risk, the window delta and a class's log-odds delta are (the outputs' headers)."""
    strands = "forward and reverse-complement strands averaged" if rc_average else "forward strand"
    risk = (
        "predicted per-genome mutation probability of the site's base, on the reference sequence "
        f"({window} bases centred on the site, moved inside the chromosome at its ends; {strands})"
    )
    delta = (
        "ALT minus REF of the predicted per-genome mutation probabilities summed over the bases "
        f"within {span} of the site (the site included, N bases left out)"
    )
    logodds = "ALT minus REF of the natural log-odds ln(p/(1-p)) of class {} of the pooled head"
    return risk, delta, logodds


def tsv_header(classes: list[str], source: str, span: int, window: int, rc_average: bool) -> str:
    risk, delta, logodds = descriptions(span, window, rc_average)
    lines = [
        f"## {source}",
        f"## risk: {risk}",
        f"## delta_risk_window: {delta}",
        *(f"## delta_logodds_{name}: {logodds.format(name)}" for name in classes),
        "## pos: 1-based, as in VCF",
    ]
    columns = ["chrom", "pos", "ref", "alt", "risk", "delta_risk_window"]
    columns += [f"delta_logodds_{name}" for name in classes]
    return "\n".join(lines) + "\n" + "\t".join(columns) + "\n"


def tsv_line(snv: Snv, risk: float, delta: float, logodds: np.ndarray) -> str:
    values = "".join(f"\t{value:.6g}" for value in logodds.tolist())
    return f"{snv.chrom}\t{snv.pos + 1}\t{snv.ref}\t{snv.alt}\t{risk:.6g}\t{delta:.6g}{values}\n"


def vcf_row(snv: Snv, risk: float, delta: float, logodds: np.ndarray, ids: list[str]) -> tuple:
    info = ";".join(
        [f"SM_RISK={risk:.6g}", f"SM_DRISK={delta:.6g}"]
        + [f"{key}={value:.6g}" for key, value in zip(ids, logodds.tolist(), strict=True)]
    )
    return (snv.chrom, snv.pos, snv.ref, snv.alt, snv.carriers, info)


def vcf_chromosomes(path: str) -> list[str]:
    """The CHROM names of a VCF's records, in order of first appearance (one quick pass)."""
    from seqmodel.io.text import line_batches

    names: dict[str, None] = {}
    for _, lines in line_batches(path, "VCF file"):
        for text in lines:
            if text and text[0] != "#":
                names[text.split("\t", 1)[0]] = None
    return list(names)


# --- the command -----------------------------------------------------------------------------------------


def check_settings(cfg: DictConfig) -> None:
    """Refuse bad settings before any file is read."""
    for key in ("ckpt_path", "vcf", "genome", "output"):
        if OmegaConf.is_missing(cfg, key):
            raise SeqmodelInputError(None, None, f"Missing mandatory value: {key} (usage: {USAGE})")
    settings = cfg.score
    if not 0 <= settings.max_ref_mismatch <= 1:
        raise ParameterError(
            "max_ref_mismatch", f"is a fraction of the sites, in [0, 1]; got {settings.max_ref_mismatch}"
        )
    if settings.window < 0:
        raise ParameterError("span", f"must be at least 0, got {settings.window}")
    for key in ("batch_size", "sort_buffer"):
        if settings[key] < 1:
            raise ParameterError(key, f"must be at least 1, got {settings[key]}")
    output_kind(cfg.output)


def check_tally(cfg: DictConfig, tally: Tally, read: int) -> None:
    """The end-of-run checks: some SNV on the genome's chromosomes, few enough REF mismatches."""
    if read and not tally.checked:
        names = ", ".join(list(tally.missing)[:5])
        raise SeqmodelInputError(
            cfg.vcf,
            None,
            f"none of its {read:,} SNVs is on a chromosome of {cfg.genome} (the VCF has: {names})",
        )
    if tally.checked and tally.mismatched > cfg.score.max_ref_mismatch * tally.checked:
        snv, seen = tally.first_mismatch
        raise SeqmodelInputError(
            cfg.vcf,
            f"line {snv.line}",
            f"{tally.mismatched:,} of {tally.checked:,} REF alleles differ from the genome, more than "
            f"score.max_ref_mismatch={cfg.score.max_ref_mismatch} (first: REF {snv.ref}, the genome has "
            f"{seen} at {snv.chrom}:{snv.pos + 1}); wrong genome build or coordinates?",
        )


def summary(tally: Tally, reader, elapsed: float) -> str:
    """The end-of-run line."""
    missing = sum(tally.missing.values())
    names = ", ".join(f"{name} ({n:,})" for name, n in tally.missing.most_common(5))
    more = ", ..." if len(tally.missing) > 5 else ""
    skipped = ", ".join(f"{n:,} {why}" for why, n in sorted(reader.skipped.items())) or "none"
    return (
        f"scored {tally.scored:,} of {reader.snvs:,} SNVs in {elapsed:.1f} s; not scored: "
        f"{tally.mismatched:,} REF mismatches (of {tally.checked:,} checked), "
        f"{missing:,} on chromosomes not in the genome{f' ({names}{more})' if missing else ''}; "
        f"alleles the VCF reader skipped: {skipped}"
    )


def score_variants(cfg: DictConfig) -> Path:
    """Score every SNV of `cfg.vcf` (see the module docstring); returns the output path."""
    from seqmodel.io.genome import Genome
    from seqmodel.models.checkpoint import load_trained_model
    from seqmodel.models.predictor import resolve_device

    check_settings(cfg)
    settings = cfg.score
    output, kind = Path(cfg.output), output_kind(cfg.output)
    device = resolve_device(cfg.predict.device)
    trained = load_trained_model(cfg.ckpt_path, device)
    scorer = VariantScorer(trained, settings.window, cfg.predict.rc_average, device)
    genome = Genome(cfg.genome)
    reader = read_vcf(cfg.vcf, keep_filtered=settings.keep_filtered)
    sites = SiteScorer(genome, scorer, settings.batch_size, settings.sort_buffer, str(cfg.vcf))
    classes = [str(name) for name in trained.classes] if len(trained.classes) > 1 else []

    def rows() -> Iterator[tuple[Snv, float, float, np.ndarray]]:
        yield from sites.rows(reader)
        check_tally(cfg, sites.tally, reader.snvs)  # before the output is committed

    source = (
        f"seqmodel-score-variants ckpt_path={Path(cfg.ckpt_path).name} vcf={Path(cfg.vcf).name} "
        f"genome={Path(cfg.genome).name} score.window={settings.window} "
        f"predict.rc_average={str(bool(cfg.predict.rc_average)).lower()}"
    )
    started = time.perf_counter()
    if kind == "tsv":
        with atomic_text(output) as out:
            out.write(tsv_header(classes, source, settings.window, trained.window, cfg.predict.rc_average))
            for batch in chunks(rows(), WRITE_BATCH):
                out.write("".join(tsv_line(*row) for row in batch))
    else:
        ids = info_ids(classes)
        risk, delta, logodds = descriptions(settings.window, trained.window, cfg.predict.rc_average)
        info = [
            InfoField("SM_RISK", "1", "Float", risk[0].upper() + risk[1:]),
            InfoField("SM_DRISK", "A", "Float", delta),
            *(
                InfoField(key, "A", "Float", logodds.format(name))
                for key, name in zip(ids, classes, strict=True)
            ),
        ]
        contigs = {
            name: genome.lengths[genome.resolve(name)]
            for name in vcf_chromosomes(cfg.vcf)
            if genome.resolve(name) is not None
        }
        write_vcf(
            output,
            (vcf_row(*row, ids) for row in rows()),
            contigs,
            source,
            ac_description="Carriers of the ALT allele in the input VCF (its AC, else its genotypes, else 1)",
            info=info,
            sort=False,
        )
    elapsed = time.perf_counter() - started
    if sites.tally.missing:
        log.warning(
            "%s: %d SNVs on chromosomes not in %s, not scored: %s",
            cfg.vcf,
            sum(sites.tally.missing.values()),
            cfg.genome,
            ", ".join(f"{name} ({n})" for name, n in sites.tally.missing.most_common(10)),
        )
    print(summary(sites.tally, reader, elapsed))
    print(f"scores: {output}")
    return output


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="score_variants")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(lambda: score_variants(cfg), FLAGS)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
