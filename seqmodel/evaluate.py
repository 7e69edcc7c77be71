"""`seqmodel-evaluate`: the model against the k-mer baselines, the PWM scan and the oracle on held-out data.

Every method gives a per-base score and/or a per-sequence score on the held-out records:

- `model`: the checkpoint's per-base rate (per genome) and class probabilities (tiles + RC average);
- `kmer3`, `kmer5`, `kmer7`: k-mer context rates fitted on the data's training split, their
  shrinkage (`prior_strength`) chosen on the validation split (lowest binomial deviance);
- `kmer3_pwm`: the 3-mer rate times a fitted factor exp(beta) inside the hits of a known motif
  (`baselines.pwm_motifs`, `pwm_motif_id`, `pwm_hit_threshold`): a binomial GLM fitted on the
  training split, the class of model `seqmodel-simulate` draws from;
- `pwm`: the best hit score of one motif per sequence (sequence label only);
- `oracle`: the true simulated rate (per base only; needs `data.true_rate`);
- `kmer3_real`: a 3-mer model fitted on the real mutations of the training records
  (with `real_mutations`; a ranking only: its scale is the real cohort's, not the genomes').

Observations: the carriers k of N genomes at each base, as the dataset reads them (the mutations
VCF's `AC` of `AN`; `data.genomes` where the file does not say; a BED of sites is 1 genome).

Per base (valid A/C/G/T bases of the held-out records):

- ranking: AUROC and AUPRC against "carried by >= 1 genome";
- rate: Pearson with the true rate on the rate scale and on the log scale, Spearman, and
  Pearson of 1 - (1 - p)^N, the probability of >= 1 carrier, with its true value;
- likelihood: the binomial deviance of the counts k of N against the predicted p (summed, and
  per base), and its excess over the oracle's on the same bases;
- calibration: observed / expected carriers in equal-count bins of the predicted rate, with
  exact Poisson 95 % intervals of the observed count (all bases, and inside / outside motif
  hits with `hits`); `calibration_plot=x.png` draws them (matplotlib);
- k-mer correlations (mean observed vs mean predicted per 3/5/7-mer); the regional
  correlation per genome window (`regional_correlation`, windows with enough held-out
  bases), and per 10 kb / 100 kb / 1 Mb window fully covered by held-out sequence
  (observed carriers vs expected carriers per window);
- the same ranking and rate metrics at motif sites and elsewhere with `hits`; AUROC / AUPRC of
  the real mutations with `real_mutations`;
- paired block-bootstrap intervals (genome blocks of `metrics.bootstrap_block` bp resampled with
  replacement) of model minus each other method for AUPRC, AUROC and deviance.

Per sequence: AUROC and AUPRC of the label. And the gap closure, (model - kmer7) / (oracle - kmer7).
A metric that cannot be computed is None (with a warning in the log), never a made-up number.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from seqmodel.baselines import (
    KmerMotifRateModel,
    KmerRateModel,
    count_kmers,
    kmer_codes,
    pwm_sequence_scores,
    pwm_threshold,
)
from seqmodel.config import CONFIG_DIR, register_resolvers
from seqmodel.data.dataset import SequenceDataset, from_records, load_dataset
from seqmodel.data.splits import check_disjoint, record_splits
from seqmodel.data.targets import mutation_targets
from seqmodel.errors import SeqmodelInputError, run_cli
from seqmodel.io.atomic import atomic_text
from seqmodel.io.fasta import FastaRecord, load_fasta
from seqmodel.io.figures import write_png
from seqmodel.io.motifs import DEFAULT_PSEUDOCOUNT, PositionWeightMatrix, read_motifs, select_motif
from seqmodel.io.regions import parse_region
from seqmodel.metrics import (
    RankedScores,
    auroc,
    auroc_standard_error,
    average_precision,
    binomial_deviance,
    block_bootstrap,
    bootstrap_interval,
    calibration_summary,
    calibration_table,
    grouped_correlation,
    log_pearson,
    pearson,
    spearman,
)

log = logging.getLogger(__name__)

KMER_CORRELATION_SIZES = (3, 5, 7)
GAP_METRICS = ("per_base_auprc", "per_base_auroc", "pearson_true_rate", "spearman_true_rate")
BOOTSTRAP_METRICS = ("per_base_auprc", "per_base_auroc", "binomial_deviance")
TABLE_COLUMNS = (
    ("per_base_auroc", "AUROC"),
    ("per_base_auprc", "AUPRC"),
    ("pearson_true_rate", "Pearson"),
    ("pearson_true_rate_log", "Pearson log"),
    ("spearman_true_rate", "Spearman"),
    ("binomial_deviance_per_base", "dev/base"),
    ("observed_expected_ratio", "O/E"),
    ("per_base_auprc_at_motifs", "AUPRC@motif"),
    ("per_base_auprc_elsewhere", "AUPRC@else"),
    ("kmer5_correlation", "5mer r"),
    ("regional_correlation", "region r"),
    ("sequence_auroc", "seq AUROC"),
    ("sequence_auprc", "seq AUPRC"),
    ("real_snv_auroc", "real AUROC"),
)
NOT_METHODS = ("evaluation",)


def _intervals(dataset: SequenceDataset) -> list[tuple[str, int, int, str]]:
    """(chrom, start, end, id) of each record; a plain-id record is its own contig."""
    rows = []
    for record_id, length in zip(dataset.ids, dataset.lengths.tolist(), strict=True):
        chrom, start, end = parse_region(record_id) or (record_id, 0, length)
        rows.append((chrom, start, end, record_id))
    return rows


@dataclass(frozen=True)
class Splits:
    """The training and validation splits the model was trained with, and the held-out records;
    their `base_target` holds the carriers per base, out of `genomes`."""

    train: SequenceDataset
    val: SequenceDataset
    held_out: SequenceDataset
    genomes: int


def load_splits(cfg: DictConfig) -> Splits:
    """The training / validation splits of `data.fasta` and the held-out set, after checking that
    the held-out records overlap no record the model may have seen (training or validation).

    The splits are the ones `seqmodel-train` uses (the DataModule's setup, `record_splits`): the
    records' `split=` header fields with `data.split_from_headers`, else a permutation seeded
    by `split_seed` with the data config's fractions. The held-out set is `held_out` (a FASTA),
    else the test split.
    """
    data = cfg.data
    files = {"mutations": data.mutations, "true_rate": data.true_rate, "labels": data.labels}
    dataset = load_dataset(data.fasta, **files, genomes=OmegaConf.select(data, "genomes", default=None))
    indices = record_splits(
        dataset,
        data.fasta,
        split_from_headers=bool(OmegaConf.select(data, "split_from_headers", default=False)),
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=data.split_seed,
    )
    train, val = dataset.subset(indices["train"]), dataset.subset(indices["val"])
    if cfg.held_out:
        held_out = from_records(
            load_fasta(cfg.held_out), cfg.held_out, classes=dataset.classes, genomes=dataset.genomes, **files
        )
        seen = dataset
    else:
        if len(indices["test"]) == 0:
            where = (
                "split=test records"
                if OmegaConf.select(data, "split_from_headers")
                else "data.test_fraction > 0"
            )
            raise SeqmodelInputError(
                data.fasta, None, f"no held-out records: set held_out=<FASTA> or {where}"
            )
        held_out = dataset.subset(indices["test"])
        seen = dataset.subset(np.concatenate([indices["train"], indices["val"]]))
    check_disjoint({"training": _intervals(seen), "held-out": _intervals(held_out)})
    if held_out.genomes != dataset.genomes:
        raise SeqmodelInputError(
            data.mutations,
            None,
            f"the training records' mutations are out of {dataset.genomes} genomes, the held-out "
            f"records' out of {held_out.genomes}",
        )
    return Splits(train, val, held_out, dataset.genomes)


def _records(dataset: SequenceDataset, values: np.ndarray) -> list[np.ndarray]:
    """`values` `(T,)` cut into the dataset's records."""
    return [values[dataset.offsets[i] : dataset.offsets[i + 1]] for i in range(len(dataset))]


def _fasta_records(dataset: SequenceDataset) -> list[FastaRecord]:
    return [
        FastaRecord(record_id, record_id, tokens, index)
        for index, (record_id, tokens) in enumerate(
            zip(dataset.ids, _records(dataset, dataset.tokens), strict=True)
        )
    ]


def _site_mask(path: str, dataset: SequenceDataset) -> np.ndarray:
    """`(T,)` 0/1 of the sites of a VCF / BED on the dataset's records."""
    return np.concatenate(mutation_targets(path, _fasta_records(dataset)))


@dataclass(frozen=True)
class Observations:
    """What was seen at each base of a split: `carriers` `(T,)`, the genomes carrying a mutation
    at the base, out of `genomes` (each base is Binomial(genomes, p) under a per-genome rate p)."""

    carriers: np.ndarray
    genomes: int

    @property
    def mutated(self) -> np.ndarray:
        return self.carriers > 0

    def expected(self, rate: np.ndarray) -> np.ndarray:
        """Expected carriers per base under the rate, N p."""
        return self.genomes * np.asarray(rate, dtype=np.float64)

    def deviance(self, rate: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Binomial deviance of the carriers at each base of the mask `where` `(T,)` under the
        rate `(T,)`."""
        return binomial_deviance(
            self.carriers[where], self.genomes, np.asarray(rate, dtype=np.float64)[where]
        )


def observations(dataset: SequenceDataset, genomes: int) -> Observations:
    """The observations of a split: its carriers per base (`base_target`) out of `genomes`."""
    return Observations(np.asarray(dataset.base_target, dtype=np.float64), int(genomes))


def model_scores(cfg: DictConfig, held_out: SequenceDataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-base rate `(T,)` and class probabilities `(R, K)` of the checkpoint's model."""
    from seqmodel.models.predictor import RecordPredictor

    predictor = RecordPredictor.from_checkpoint(cfg.ckpt_path, cfg.predict)
    per_base, per_class = [], []
    for tokens in _records(held_out, held_out.tokens):
        base, classes = predictor.predict_record(tokens)
        per_base.append(base)
        per_class.append(classes)
    return np.concatenate(per_base).astype(np.float64), np.stack(per_class), predictor.classes


def _kmer_groups(held_out: SequenceDataset, k: int) -> np.ndarray:
    return np.concatenate([kmer_codes(t, k) for t in _records(held_out, held_out.tokens)])


def _genome_positions(dataset: SequenceDataset) -> tuple[np.ndarray, np.ndarray]:
    """`(T,)` chromosome index and `(T,)` 0-based genome position of each base."""
    intervals = _intervals(dataset)
    chrom_index = {chrom: i for i, chrom in enumerate(sorted({row[0] for row in intervals}))}
    chroms = [np.full(end - start, chrom_index[chrom], dtype=np.int64) for chrom, start, end, _ in intervals]
    positions = [np.arange(start, end, dtype=np.int64) for _, start, end, _ in intervals]
    if not chroms:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(chroms), np.concatenate(positions)


def _window_groups(coordinates: tuple[np.ndarray, np.ndarray], window: int) -> np.ndarray:
    """`(T,)` id (0..W-1) of the genome window (`window` bp) of each base."""
    chroms, positions = coordinates
    if len(chroms) == 0:
        return np.zeros(0, dtype=np.int64)
    _, groups = np.unique(np.stack([chroms, positions // window], axis=1), axis=0, return_inverse=True)
    return groups.reshape(-1)


def _size_name(bp: int) -> str:
    if bp % 1_000_000 == 0:
        return f"{bp // 1_000_000}Mb"
    if bp % 1000 == 0:
        return f"{bp // 1000}kb"
    return f"{bp}bp"


@dataclass
class Context:
    """Everything the per-base metrics need besides the method's rate."""

    valid: np.ndarray  # (T,) A/C/G/T bases
    observed: Observations
    true_rate: np.ndarray
    kmer_groups: dict[int, np.ndarray]
    region_groups: np.ndarray
    full_windows: dict[int, np.ndarray]  # window bp -> (T,) window id, -1 outside fully covered windows
    kmer_min_count: int
    regional_min_bases: int
    calibration_bins: int
    motif: np.ndarray | None
    real: np.ndarray | None


def full_window_ids(coordinates: tuple[np.ndarray, np.ndarray], window: int) -> np.ndarray:
    """`(T,)` id of the genome window (`window` bp) of each base when the held-out records cover
    every base of that window, else -1."""
    groups = _window_groups(coordinates, window)
    if len(groups) == 0:
        return groups
    covered = np.bincount(groups)
    return np.where(covered[groups] >= window, groups, -1)


def window_correlation(windows: np.ndarray, observed: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """Pearson, over the windows (ids >= 0), of the observed with the expected carriers summed
    per window, and the number of windows; a window where the prediction is missing at some base
    is left out."""
    inside = windows >= 0
    if not inside.any():
        return math.nan, 0
    ids = windows[inside]
    missing = np.bincount(ids, weights=~np.isfinite(expected[inside])) > 0
    present = np.bincount(ids) > 0
    keep = present & ~missing
    finite = np.where(np.isfinite(expected[inside]), expected[inside], 0.0)
    sum_observed = np.bincount(ids, weights=observed[inside])[keep]
    sum_expected = np.bincount(ids, weights=finite)[keep]
    return pearson(sum_observed, sum_expected), int(keep.sum())


def per_base_metrics(rate: np.ndarray, context: Context, rate_scale: bool = True) -> dict:
    """Metrics of one per-base prediction `(T,)` over the held-out bases of `context`.

    `rate_scale`: the prediction is a per-genome rate of the observed genomes (likelihood,
    calibration and expected counts apply); otherwise only rankings and correlations.
    """
    obs = context.observed
    valid = context.valid & np.isfinite(rate)
    mutated, carriers, truth = obs.mutated, obs.carriers, context.true_rate
    out: dict = {
        "per_base_auroc": auroc(rate[valid], mutated[valid]),
        "per_base_auprc": average_precision(rate[valid], mutated[valid]),
        "pearson_true_rate": pearson(rate[valid], truth[valid]),
        "pearson_true_rate_log": log_pearson(rate[valid], truth[valid]),
        "spearman_true_rate": spearman(rate[valid], truth[valid]),
    }
    if rate_scale and obs.genomes > 1:
        # P(>= 1 of N genomes carries a mutation), predicted and true.
        probability = -np.expm1(obs.genomes * np.log1p(-np.clip(rate[valid], 0, 1 - 1e-12)))
        true_probability = -np.expm1(obs.genomes * np.log1p(-np.clip(truth[valid], 0, 1 - 1e-12)))
        out["pearson_true_probability"] = pearson(probability, true_probability)
    for k, groups in context.kmer_groups.items():
        known = valid & (groups >= 0)
        out[f"kmer{k}_correlation"] = grouped_correlation(
            groups[known], carriers[known], rate[known], context.kmer_min_count
        )
    out["regional_correlation"] = grouped_correlation(
        context.region_groups[valid], carriers[valid], rate[valid], context.regional_min_bases
    )
    if rate_scale:
        deviance = obs.deviance(rate, valid)
        out["binomial_deviance"] = float(deviance.sum()) if valid.any() else math.nan
        out["binomial_deviance_per_base"] = float(deviance.mean()) if valid.any() else math.nan
        expected = np.where(context.valid, obs.expected(rate), 0.0)
        for window, ids in context.full_windows.items():
            ids = np.where(context.valid, ids, -1)
            correlation, _ = window_correlation(ids, carriers * context.valid, expected)
            out[f"regional_correlation_{_size_name(window)}"] = correlation
        subsets = {"all": valid}
        if context.motif is not None:
            subsets |= {"at_motifs": valid & context.motif, "elsewhere": valid & ~context.motif}
        tables = {
            name: calibration_table(
                rate[where], obs.expected(rate[where]), carriers[where], context.calibration_bins
            )
            for name, where in subsets.items()
        }
        out |= calibration_summary(tables["all"])
        out["calibration"] = tables
    if context.motif is not None:
        for name, where in (("at_motifs", context.motif), ("elsewhere", ~context.motif)):
            chosen = valid & where
            out[f"per_base_auroc_{name}"] = auroc(rate[chosen], mutated[chosen])
            out[f"per_base_auprc_{name}"] = average_precision(rate[chosen], mutated[chosen])
            out[f"pearson_true_rate_{name}"] = pearson(rate[chosen], truth[chosen])
            if rate_scale:
                out[f"binomial_deviance_{name}"] = float(obs.deviance(rate, chosen).sum())
    if context.real is not None:
        real = context.real[valid]
        area = auroc(rate[valid], real)
        out["real_snv_auroc"] = area
        out["real_snv_auroc_se"] = auroc_standard_error(area, int(real.sum()), int((~real).sum()))
        out["real_snv_auprc"] = average_precision(rate[valid], real)
    return out


def sequence_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """AUROC / AUPRC of sequence scores: `(R,)` for the last class, or `(R, K)` one-vs-rest macro."""
    if scores.ndim == 1:
        positive = labels == num_classes - 1
        return {
            "sequence_auroc": auroc(scores, positive),
            "sequence_auprc": average_precision(scores, positive),
        }
    if num_classes == 2:
        return sequence_metrics(scores[:, 1], labels, 2)
    columns = range(num_classes)
    return {
        "sequence_auroc": float(np.nanmean([auroc(scores[:, c], labels == c) for c in columns])),
        "sequence_auprc": float(np.nanmean([average_precision(scores[:, c], labels == c) for c in columns])),
    }


def gap_closure(results: dict[str, dict], metric: str) -> float | None:
    """(model - kmer7) / (oracle - kmer7) for one metric; None where undefined."""
    try:
        model, kmer7, oracle = (results[m][metric] for m in ("model", "kmer7", "oracle"))
    except KeyError:
        return None
    if None in (model, kmer7, oracle) or oracle == kmer7:
        return None
    return (model - kmer7) / (oracle - kmer7)


def _clean(value):
    """JSON-ready: numpy scalars as Python numbers, NaN / infinity as None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- baselines ------------------------------------------------------------------------------------


def _kmer_rates(model: KmerRateModel, dataset: SequenceDataset) -> np.ndarray:
    """`(T,)` per-genome rate of a k-mer model fitted on carrier counts; NaN at N."""
    fitted = np.concatenate([model.predict(t) for t in _records(dataset, dataset.tokens)])
    return fitted.astype(np.float64)


def fit_kmer_models(
    cfg: DictConfig, splits: Splits, train_obs: Observations, val_obs: Observations
) -> tuple[dict[int, KmerRateModel], dict[str, dict]]:
    """A k-mer model per size, fitted on the training split with the shrinkage of
    `baselines.prior_strength_grid` that gives the lowest binomial deviance on the validation
    split (`baselines.prior_strength` when there is no grid or no validation base)."""
    train, val = splits.train, splits.val
    train_tokens = _records(train, train.tokens)
    train_targets = _records(train, train_obs.carriers)
    grid = [float(s) for s in (cfg.baselines.prior_strength_grid or [])]
    val_valid = val.tokens < 4
    fixed = float(cfg.baselines.prior_strength)
    if grid and not val_valid.any():
        log.warning(
            "no validation bases: k-mer shrinkage not chosen, baselines.prior_strength=%g used", fixed
        )
    models, report = {}, {}
    for k in cfg.baselines.kmer_sizes:
        k = int(k)
        counts = count_kmers(train_tokens, train_targets, k, train_obs.genomes)
        if not grid or not val_valid.any():
            models[k] = KmerRateModel.from_counts(counts, fixed)
            report[f"kmer{k}"] = {"chosen": fixed, "validation_deviance": None}
            continue
        deviances = {}
        for strength in grid:
            model = KmerRateModel.from_counts(counts, strength)
            rate = _kmer_rates(model, val)
            deviances[strength] = float(val_obs.deviance(rate, val_valid).sum())
        chosen = min(grid, key=lambda s: deviances[s])
        models[k] = KmerRateModel.from_counts(counts, chosen)
        report[f"kmer{k}"] = {
            "chosen": chosen,
            "validation_deviance": {f"{s:g}": d for s, d in deviances.items()},
        }
    return models, report


def _motif(cfg: DictConfig) -> PositionWeightMatrix | None:
    if not cfg.baselines.pwm_motifs:
        return None
    motifs = read_motifs(cfg.baselines.pwm_motifs)
    return select_motif(motifs, cfg.baselines.pwm_motif_id, cfg.baselines.pwm_motifs).pwm(DEFAULT_PSEUDOCOUNT)


def _hit_masks(dataset: SequenceDataset, pwm: PositionWeightMatrix, threshold: float) -> list[np.ndarray]:
    return [pwm.hit_mask(tokens, threshold) for tokens in _records(dataset, dataset.tokens)]


def motif_hit_threshold(cfg: DictConfig, pwm: PositionWeightMatrix | None) -> float | None:
    """The `kmer3_pwm` hit threshold (`baselines.pwm_hit_threshold`) in log2-odds bits; None (with
    a warning when a motif is given) without one."""
    setting = cfg.baselines.pwm_hit_threshold
    if pwm is None:
        return None
    if setting is None:
        log.warning("kmer3_pwm left out: set baselines.pwm_hit_threshold (a log2-odds score or a percentage)")
        return None
    try:
        return pwm_threshold(setting, pwm)
    except ValueError as error:
        raise SeqmodelInputError(None, "baselines.pwm_hit_threshold", str(error)) from None


def fit_motif_model(
    pwm: PositionWeightMatrix, threshold: float, splits: Splits, train_obs: Observations
) -> tuple[np.ndarray, dict]:
    """The `kmer3_pwm` rates `(T,)` on the held-out records and the fit's report."""
    train, held_out = splits.train, splits.held_out
    model = KmerMotifRateModel.fit(
        _records(train, train.tokens),
        _records(train, train_obs.carriers),
        _hit_masks(train, pwm, threshold),
        genomes=train_obs.genomes,
    )
    rates = np.concatenate(
        [
            model.predict(tokens, hits)
            for tokens, hits in zip(
                _records(held_out, held_out.tokens), _hit_masks(held_out, pwm, threshold), strict=True
            )
        ]
    )
    report = {"threshold": threshold, "factor": model.factor, "beta": model.beta}
    return rates, report


# --- bootstrap ------------------------------------------------------------------------------------


def bootstrap_differences(
    rates: dict[str, np.ndarray],
    rate_scale: dict[str, bool],
    context: Context,
    blocks: np.ndarray,
    replicates: int,
    seed: int,
) -> dict[str, dict[str, dict]]:
    """Paired block-bootstrap intervals of model minus each other method: {method: {metric:
    {estimate, mean, ci95_low, ci95_high, replicates}}} for AUPRC, AUROC and binomial deviance
    (the last only between rate-scale methods), each pair on the bases both predict."""
    obs = context.observed
    model = rates["model"]
    num_blocks = int(blocks.max()) + 1 if len(blocks) else 0
    ranked: dict[tuple[str, bytes], RankedScores] = {}
    deviance: dict[tuple[str, bytes], np.ndarray] = {}
    pairs = []
    for other in rates:
        if other == "model":
            continue
        mask = context.valid & np.isfinite(model) & np.isfinite(rates[other])
        if not mask.any():
            continue
        key = np.packbits(mask).tobytes()
        for method in ("model", other):
            if (method, key) not in ranked:
                ranked[method, key] = RankedScores(rates[method][mask], obs.mutated[mask], blocks[mask])
                if rate_scale[method]:
                    per_base = obs.deviance(rates[method], mask)
                    deviance[method, key] = np.bincount(blocks[mask], weights=per_base, minlength=num_blocks)
        pairs.append((other, key))

    def statistic(weights: np.ndarray) -> np.ndarray:
        # Each (method, bases) metric once per resample, however many pairs share it.
        metrics = {
            key: (
                scores.average_precision(weights),
                scores.auroc(weights),
                float(weights @ deviance[key]) if key in deviance else math.nan,
            )
            for key, scores in ranked.items()
        }
        values = [metrics["model", key][i] - metrics[other, key][i] for other, key in pairs for i in range(3)]
        return np.array(values, dtype=np.float64)

    estimate = statistic(np.ones(num_blocks))
    draws = block_bootstrap(statistic, num_blocks, replicates, seed)
    out: dict[str, dict[str, dict]] = {}
    for index, (other, _) in enumerate(pairs):
        out[other] = {}
        for offset, metric in enumerate(BOOTSTRAP_METRICS):
            column = 3 * index + offset
            if not math.isfinite(estimate[column]):
                continue
            out[other][metric] = {"estimate": float(estimate[column])} | bootstrap_interval(draws[:, column])
    return out


# --- the calibration plot -------------------------------------------------------------------------


def _check_plot_path(path: str | None) -> None:
    if path is None:
        return
    if not str(path).endswith(".png"):
        raise SeqmodelInputError(path, None, "calibration_plot must be a .png file")
    if not Path(path).parent.is_dir():
        raise SeqmodelInputError(path, None, "output directory does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SeqmodelInputError(
            path, None, "calibration_plot needs matplotlib: pip install 'seqmodel[plot]'"
        ) from None


def write_calibration_plot(path: str, results: dict) -> None:
    """Reliability plot: observed against expected carriers per base in each bin of predicted
    rate, log-log, with the exact Poisson 95 % interval; one panel per subset (all bases,
    motif hits, elsewhere), one line per method. Written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = [m for m, row in results.items() if isinstance(row, dict) and row.get("calibration")]
    subsets = [
        s for s in ("all", "at_motifs", "elsewhere") if any(s in results[m]["calibration"] for m in methods)
    ]
    titles = {"all": "all bases", "at_motifs": "inside motif hits", "elsewhere": "outside motif hits"}
    figure = Figure(figsize=(4.5 * max(len(subsets), 1), 4.5), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(subsets), 1), squeeze=False)[0]
    for axis, subset in zip(axes, subsets, strict=False):
        lowest, highest = math.inf, 0.0
        for method in methods:
            rows = [
                r for r in results[method]["calibration"].get(subset, []) if r["bases"] and r["expected"] > 0
            ]
            if not rows:
                continue
            x = np.array([r["expected"] / r["bases"] for r in rows])
            y = np.array([r["observed"] / r["bases"] for r in rows])
            low = np.array([r["observed_low"] / r["bases"] for r in rows])
            high = np.array([r["observed_high"] / r["bases"] for r in rows])
            axis.errorbar(
                x,
                np.maximum(y, 1e-12),
                yerr=[np.maximum(y - low, 0), high - y],
                marker="o",
                markersize=3,
                linewidth=1,
                capsize=2,
                label=method,
            )
            lowest, highest = (
                min(lowest, x.min(), low[low > 0].min(initial=x.min())),
                max(highest, x.max(), high.max()),
            )
        if highest > 0:
            axis.plot([lowest, highest], [lowest, highest], color="grey", linewidth=0.8, linestyle="--")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(titles[subset])
        axis.set_xlabel("expected carriers per base (bin mean)")
        axis.set_ylabel("observed carriers per base")
        axis.legend(fontsize=7)
    write_png(figure, path, dpi=120)


# --- evaluation -----------------------------------------------------------------------------------


def _warn_undefined(results: dict) -> None:
    """Log the metrics that were computed but came out undefined (NaN)."""
    for method, row in results.items():
        missing = sorted(
            k
            for k, v in row.items()
            if isinstance(v, float) and not math.isfinite(v) and not k.startswith("regional_correlation_")
        )  # the windows fully covered are warned about once, for every method
        if missing:
            log.warning("%s: undefined on these data, reported as None: %s", method, ", ".join(missing))


def evaluate(cfg: DictConfig) -> dict:
    """Score every method on the held-out records; returns the results (as written to JSON)."""
    _check_plot_path(cfg.calibration_plot)
    pwm = _motif(cfg)
    threshold = motif_hit_threshold(cfg, pwm)
    splits = load_splits(cfg)
    train, held_out = splits.train, splits.held_out
    model_rate, class_scores, classes = model_scores(cfg, held_out)
    if classes != held_out.classes:
        raise SeqmodelInputError(
            cfg.ckpt_path,
            None,
            f"the checkpoint's classes {classes} differ from the data's {held_out.classes}",
        )
    mutations = cfg.data.mutations
    if mutations and splits.genomes == 1:
        log.warning(
            "%s: mutations counted out of 1 genome (the file gives no other number; data.genomes sets one)",
            mutations,
        )
    train_obs, val_obs, held_obs = (
        observations(split, splits.genomes) for split in (train, splits.val, held_out)
    )
    valid = held_out.tokens < 4
    true_rate = np.asarray(held_out.true_rate, dtype=np.float64)
    has_truth = bool(np.isfinite(true_rate[valid]).any())
    if not has_truth:
        log.warning("no true rate on the held-out bases: oracle and true-rate correlations are None")
    coordinates = _genome_positions(held_out)
    windows = [int(w) for w in cfg.metrics.regional_windows or []]
    context = Context(
        valid=valid,
        observed=held_obs,
        true_rate=true_rate,
        kmer_groups={k: _kmer_groups(held_out, k) for k in KMER_CORRELATION_SIZES},
        region_groups=_window_groups(coordinates, int(cfg.metrics.regional_window)),
        full_windows={w: full_window_ids(coordinates, w) for w in windows},
        kmer_min_count=int(cfg.metrics.kmer_min_count),
        regional_min_bases=int(cfg.metrics.regional_min_bases),
        calibration_bins=int(cfg.metrics.calibration_bins),
        motif=_site_mask(cfg.hits, held_out) >= 0.5 if cfg.hits else None,
        real=_site_mask(cfg.real_mutations, held_out) >= 0.5 if cfg.real_mutations else None,
    )
    window_counts = {}
    for window, ids in context.full_windows.items():
        _, count = window_correlation(np.where(valid, ids, -1), held_obs.carriers, np.zeros(len(ids)))
        window_counts[_size_name(window)] = count
        if count < 3:
            log.warning(
                "regional correlation at %s: %d windows fully covered by held-out sequence (need 3): None",
                _size_name(window),
                count,
            )

    rates: dict[str, np.ndarray] = {"model": model_rate}
    rate_scale = {"model": True}
    kmer_models, shrinkage = fit_kmer_models(cfg, splits, train_obs, val_obs)
    for k, kmer in kmer_models.items():
        rates[f"kmer{k}"] = _kmer_rates(kmer, held_out)
        rate_scale[f"kmer{k}"] = True
    motif_fit = None if threshold is None else fit_motif_model(pwm, threshold, splits, train_obs)
    if motif_fit is not None:
        rates["kmer3_pwm"], rate_scale["kmer3_pwm"] = motif_fit[0], True
    if has_truth:
        rates["oracle"], rate_scale["oracle"] = true_rate, True
    if cfg.real_mutations:
        real_train = _records(train, _site_mask(cfg.real_mutations, train))
        kmer = KmerRateModel.fit(_records(train, train.tokens), real_train, 3, cfg.baselines.prior_strength)
        rates["kmer3_real"] = np.concatenate(
            [kmer.predict(t) for t in _records(held_out, held_out.tokens)]
        ).astype(np.float64)
        rate_scale["kmer3_real"] = False
    per_sequence = {"model": class_scores}
    if pwm is not None:
        per_sequence["pwm"] = pwm_sequence_scores(_records(held_out, held_out.tokens), pwm)

    results: dict = {}
    num_classes = len(held_out.classes)
    labelled = len(np.unique(held_out.labels)) > 1
    for method in [*rates, *(m for m in per_sequence if m not in rates)]:
        row = per_base_metrics(rates[method], context, rate_scale[method]) if method in rates else {}
        if method in per_sequence and labelled:
            row |= sequence_metrics(per_sequence[method], held_out.labels, num_classes)
        results[method] = row
    if "oracle" in rates:
        for method in rates:
            if not rate_scale[method]:
                continue
            common = valid & np.isfinite(rates[method]) & np.isfinite(true_rate)
            excess = (
                held_obs.deviance(rates[method], common).sum() - held_obs.deviance(true_rate, common).sum()
            )
            results[method]["binomial_deviance_excess_over_oracle"] = (
                float(excess) if common.any() else math.nan
            )
    for name, report in shrinkage.items():
        results[name]["prior_strength"] = report["chosen"]
    if motif_fit is not None:
        results["kmer3_pwm"]["motif_factor"] = motif_fit[1]["factor"]
    _warn_undefined(results)

    block_bp = int(cfg.metrics.bootstrap_block)
    blocks = _window_groups(coordinates, block_bp)
    num_blocks = len(np.unique(blocks[valid])) if valid.any() else 0
    replicates = int(cfg.metrics.bootstrap_replicates)
    if num_blocks >= 2 and replicates > 0:
        _, blocks = np.unique(np.where(valid, blocks, -1), return_inverse=True)
        blocks = blocks.reshape(-1) - (0 if valid.all() else 1)  # ids 0.. over the valid bases
        results["model"]["bootstrap_differences"] = bootstrap_differences(
            rates, rate_scale, context, blocks, replicates, int(cfg.metrics.bootstrap_seed)
        )
    else:
        log.warning(
            "bootstrap intervals left out: %d genome blocks of %d bp hold held-out bases (need 2)",
            num_blocks,
            block_bp,
        )

    keys = sorted({key for row in results.values() for key in row})
    results = {method: {key: row.get(key) for key in keys} for method, row in results.items()}
    results = _clean(results)
    results["gap_closure_vs_kmer7"] = gap_closure(results, "per_base_auprc")
    results["gap_closure_vs_kmer7_by_metric"] = {m: gap_closure(results, m) for m in GAP_METRICS}
    results["evaluation"] = _clean(
        {
            "checkpoint": str(cfg.ckpt_path),
            "training_fasta": str(cfg.data.fasta),
            "held_out": str(cfg.held_out or f"{cfg.data.fasta} test split"),
            "split": "split= headers"
            if OmegaConf.select(cfg.data, "split_from_headers")
            else "seeded permutation",
            "held_out_records": len(held_out),
            "held_out_bases": int(valid.sum()),
            "held_out_mutated_fraction": float(held_obs.mutated[valid].mean()) if valid.any() else None,
            "held_out_carriers": float(held_obs.carriers[valid].sum()),
            "held_out_motif_bases": None if context.motif is None else int((context.motif & valid).sum()),
            "held_out_real_mutations": None if context.real is None else int((context.real & valid).sum()),
            "training_records": len(train),
            "training_bases": int((train.tokens < 4).sum()),
            "validation_records": len(splits.val),
            "validation_bases": int((splits.val.tokens < 4).sum()),
            "classes": held_out.classes,
            "genomes": held_obs.genomes,
            "kmer_prior_strength": shrinkage,
            "kmer3_pwm": None if motif_fit is None else motif_fit[1],
            "regional_windows_fully_covered": window_counts,
            "bootstrap": {
                "block_bp": block_bp,
                "blocks": num_blocks,
                "replicates": replicates,
                "seed": int(cfg.metrics.bootstrap_seed),
            },
            "config": OmegaConf.to_container(cfg, resolve=True),
        }
    )
    plot = cfg.calibration_plot
    if plot is not None:
        write_calibration_plot(plot, results)
    return results


def _methods(results: dict) -> list[str]:
    return [
        m
        for m, row in results.items()
        if isinstance(row, dict) and m not in NOT_METHODS and not m.startswith("gap")
    ]


def format_table(results: dict) -> str:
    """The main metrics, one row per method ('-' where a metric does not apply), and the model's
    bootstrap differences in AUPRC and deviance."""
    methods = _methods(results)
    columns = [
        (key, title) for key, title in TABLE_COLUMNS if any(results[m].get(key) is not None for m in methods)
    ]
    lines = ["| method | " + " | ".join(title for _, title in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for method in methods:
        cells = [
            f"{v:.3f}" if isinstance(v := results[method].get(key), float) else "-" for key, _ in columns
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    closure = results.get("gap_closure_vs_kmer7")
    lines.append(
        "gap closure vs kmer7 (per-base AUPRC): " + ("-" if closure is None else f"{100 * closure:.1f} %")
    )
    differences = (results.get("model") or {}).get("bootstrap_differences") or {}
    for other, metrics in differences.items():
        parts = [
            f"{metric} {d['estimate']:+.4g} [{d['ci95_low']:+.4g}, {d['ci95_high']:+.4g}]"
            for metric, d in metrics.items()
            if d.get("ci95_low") is not None
        ]
        if parts:
            lines.append(f"model - {other} (95 % block bootstrap): " + "; ".join(parts))
    return "\n".join(lines)


def log_to_wandb(cfg: DictConfig, results: dict) -> str | None:
    """With `logger=wandb`: `evaluate/results`, a table of methods x metrics (every scalar metric),
    `evaluate/calibration`, the calibration plot (`calibration_plot`, else drawn into the run
    directory as calibration.png), and the model's metrics and the gap closure in the summary, in
    an offline wandb run in the run directory (`logger.wandb.save_dir`). Returns the run's folder."""
    loggers = cfg.get("logger") or {}
    for name in loggers:
        if name != "wandb":
            log.warning("seqmodel-evaluate logs to wandb only; logger.%s left out", name)
    if "wandb" not in loggers:
        return None
    import wandb
    from hydra.utils import instantiate

    from seqmodel.train import offline_first, wandb_data_dir

    offline_first()
    settings = loggers.wandb
    save_dir = Path(settings.save_dir)
    wandb_data_dir(save_dir)
    logger = instantiate(settings, name=settings.get("name") or cfg.task_name, job_type="evaluate")
    run = logger.experiment
    run.config.update(OmegaConf.to_container(cfg, resolve=True), allow_val_change=True)
    methods = _methods(results)
    scalars = {
        key
        for method in methods
        for key, value in results[method].items()
        if value is None or isinstance(value, int | float) and not isinstance(value, bool)
    }
    printed = [key for key, _ in TABLE_COLUMNS if key in scalars]  # the printed table's first
    keys = printed + sorted(scalars - set(printed))
    rows = [[method, *(results[method].get(key) for key in keys)] for method in methods]
    media = {"evaluate/results": wandb.Table(columns=["method", *keys], data=rows)}
    plot = cfg.calibration_plot
    if plot is None and any(isinstance(results[m].get("calibration"), dict) for m in methods):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            log.warning("the calibration plot needs matplotlib (pip install 'seqmodel[plot]'); left out")
        else:
            plot = str(save_dir / "calibration.png")
            write_calibration_plot(plot, results)
    if plot is not None and Path(plot).is_file():
        media["evaluate/calibration"] = wandb.Image(str(plot), caption="observed vs expected carriers")
    run.log(media)
    for key in keys:
        value = (results.get("model") or {}).get(key)
        if value is not None:
            run.summary[f"model/{key}"] = value
    if results.get("gap_closure_vs_kmer7") is not None:
        run.summary["gap_closure_vs_kmer7"] = results["gap_closure_vs_kmer7"]
    folder = str(Path(run.dir).parent)
    run.finish()
    return folder


def run(cfg: DictConfig) -> dict:
    """Evaluate, print the table and write `cfg.output` (JSON) atomically."""
    if cfg.output is not None and not str(cfg.output).endswith(".json"):
        raise SeqmodelInputError(cfg.output, None, "output must be a .json file")
    results = evaluate(cfg)
    print(format_table(results))
    if cfg.output is not None:
        with atomic_text(cfg.output) as handle:
            handle.write(json.dumps(results, indent=2) + "\n")
        print(f"wrote {cfg.output}")
    plot = cfg.calibration_plot
    if plot is not None:
        print(f"wrote {plot}")
    folder = log_to_wandb(cfg, results)
    if folder is not None:
        print(f"wandb run: {folder}  (upload later: wandb sync <that dir>)")
    return results


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(lambda: run(cfg))


def main() -> None:
    register_resolvers()
    _hydra_main()


if __name__ == "__main__":
    main()
