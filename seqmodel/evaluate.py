"""`seqmodel-evaluate`: the model against the k-mer baselines, the PWM scan and the oracle on held-out data.

Every method gives a per-base score and/or a per-sequence score on the held-out records:

- `model`: the checkpoint's per-base probability and class probabilities (tiles + RC average);
- `kmer3`, `kmer5`, `kmer7`: k-mer context rates fitted on the data's training split;
- `pwm`: the best hit score of one motif per sequence (sequence label only);
- `oracle`: the true simulated rate (per base only; needs `data.true_rate`);
- `kmer3_real`: a 3-mer model fitted on the real mutations of the training records
  (with `real_mutations`).

Per base (valid A/C/G/T bases of the held-out records): AUROC and AUPRC against the observed
mutations; Pearson and Spearman with the true rate, and Pearson with the true probability of
the training target, 1 - (1 - rate)^N for N simulated genomes (the VCF's `AN`; a calibrated
model of "mutated in >= 1 of N genomes" is not linear in the rate); k-mer correlations (mean
observed vs mean predicted per 3/5/7-mer) and the regional correlation (per genome window);
the same at motif sites and elsewhere with `hits`; AUROC / AUPRC of the real mutations with
`real_mutations`.
Per sequence: AUROC and AUPRC of the label. And the gap closure, (model - kmer7) / (oracle - kmer7).
"""

from __future__ import annotations

import json
import math
import os
import sys

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from seqmodel.baselines import KmerRateModel, kmer_codes, pwm_sequence_scores
from seqmodel.config import CONFIG_DIR, register_resolvers
from seqmodel.data.dataset import SequenceDataset, from_records, load_dataset, split_records
from seqmodel.io.fasta import REGION_ID, FastaRecord, load_fasta
from seqmodel.io.motifs import DEFAULT_PSEUDOCOUNT, read_motifs, select_motif
from seqmodel.data.splits import check_disjoint
from seqmodel.data.targets import mutation_targets
from seqmodel.io.variants import vcf_allele_number
from seqmodel.io.atomic import atomic_text
from seqmodel.errors import SeqmodelInputError
from seqmodel.metrics import (
    auroc,
    auroc_standard_error,
    average_precision,
    grouped_correlation,
    pearson,
    spearman,
)

KMER_CORRELATION_SIZES = (3, 5, 7)
GAP_METRICS = ("per_base_auprc", "per_base_auroc", "pearson_true_rate", "spearman_true_rate")
TABLE_COLUMNS = (
    ("per_base_auroc", "AUROC"),
    ("per_base_auprc", "AUPRC"),
    ("pearson_true_rate", "Pearson"),
    ("pearson_true_probability", "Pearson P"),
    ("spearman_true_rate", "Spearman"),
    ("per_base_auprc_at_motifs", "AUPRC@motif"),
    ("per_base_auprc_elsewhere", "AUPRC@else"),
    ("kmer5_correlation", "5mer r"),
    ("regional_correlation", "region r"),
    ("sequence_auroc", "seq AUROC"),
    ("sequence_auprc", "seq AUPRC"),
    ("real_snv_auroc", "real AUROC"),
)


def _intervals(dataset: SequenceDataset) -> list[tuple[str, int, int, str]]:
    """(chrom, start, end, id) of each record; a plain-id record is its own contig."""
    rows = []
    for record_id, length in zip(dataset.ids, dataset.lengths.tolist(), strict=True):
        match = REGION_ID.match(record_id)
        if match:
            rows.append((match["chrom"], int(match["start"]), int(match["end"]), record_id))
        else:
            rows.append((record_id, 0, length, record_id))
    return rows


def load_splits(cfg: DictConfig) -> tuple[SequenceDataset, SequenceDataset]:
    """(training split, held-out set), after checking that the held-out records overlap no record
    the model may have seen (training or validation split).

    The training split is the one `seqmodel-train` uses: `split_records` over `data.fasta`.
    """
    data = cfg.data
    files = {"mutations": data.mutations, "true_rate": data.true_rate, "labels": data.labels}
    dataset = load_dataset(data.fasta, **files)
    try:
        indices = split_records(len(dataset), data.val_fraction, data.test_fraction, seed=data.split_seed)
    except ValueError as error:
        raise SeqmodelInputError(data.fasta, None, str(error)) from None
    train = dataset.subset(indices["train"])
    if cfg.held_out:
        held_out = from_records(load_fasta(cfg.held_out), cfg.held_out, classes=dataset.classes, **files)
        seen = dataset
    else:
        if len(indices["test"]) == 0:
            raise SeqmodelInputError(
                data.fasta, None, "no held-out records: set held_out=<FASTA> or data.test_fraction > 0"
            )
        held_out = dataset.subset(indices["test"])
        seen = dataset.subset(np.concatenate([indices["train"], indices["val"]]))
    check_disjoint({"training": _intervals(seen), "held-out": _intervals(held_out)})
    return train, held_out


def _records(dataset: SequenceDataset, values: np.ndarray) -> list[np.ndarray]:
    """`values` `(T,)` cut into the dataset's records."""
    return [values[dataset.offsets[i] : dataset.offsets[i + 1]] for i in range(len(dataset))]


def _site_mask(path: str, dataset: SequenceDataset) -> np.ndarray:
    """`(T,)` 0/1 of the sites of a VCF / BED on the dataset's records."""
    records = [
        FastaRecord(record_id, record_id, tokens, index)
        for index, (record_id, tokens) in enumerate(
            zip(dataset.ids, _records(dataset, dataset.tokens), strict=True)
        )
    ]
    return np.concatenate(mutation_targets(path, records))


def model_scores(cfg: DictConfig, held_out: SequenceDataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-base probability `(T,)` and class probabilities `(R, K)` of the checkpoint's model."""
    from seqmodel.models.predictor import RecordPredictor

    predictor = RecordPredictor.from_checkpoint(cfg.ckpt_path, cfg.predict)
    per_base, per_class = [], []
    for tokens in _records(held_out, held_out.tokens):
        base, classes = predictor.predict_record(tokens)
        per_base.append(base)
        per_class.append(classes)
    return np.concatenate(per_base), np.stack(per_class), predictor.classes


def _kmer_groups(held_out: SequenceDataset, k: int) -> np.ndarray:
    return np.concatenate([kmer_codes(t, k) for t in _records(held_out, held_out.tokens)])


def _region_groups(held_out: SequenceDataset, window: int) -> np.ndarray:
    """`(T,)` id of the genome window (`window` bp) of each base."""
    intervals = _intervals(held_out)
    chrom_index = {chrom: i for i, chrom in enumerate(sorted({row[0] for row in intervals}))}
    keys = [
        np.stack([np.full(end - start, chrom_index[chrom]), np.arange(start, end) // window], axis=1)
        for chrom, start, end, _ in intervals
    ]
    _, groups = np.unique(np.concatenate(keys), axis=0, return_inverse=True)
    return groups.reshape(-1)


def per_base_metrics(score: np.ndarray, context: dict) -> dict[str, float | None]:
    """Metrics of one per-base score `(T,)` over the held-out bases described by `context`."""
    valid = context["valid"] & np.isfinite(score)
    target, rate = context["target"], context["true_rate"]
    out: dict[str, float | None] = {
        "per_base_auroc": auroc(score[valid], target[valid]),
        "per_base_auprc": average_precision(score[valid], target[valid]),
        "pearson_true_rate": pearson(score[valid], rate[valid]),
        "spearman_true_rate": spearman(score[valid], rate[valid]),
    }
    if context["genomes"] is not None:
        # The per-base target is "mutated in >= 1 of N genomes": compare on that scale too.
        probability = 1 - (1 - rate[valid]) ** context["genomes"]
        out["pearson_true_probability"] = pearson(score[valid], probability)
    for k, groups in context["kmer_groups"].items():
        known = valid & (groups >= 0)
        out[f"kmer{k}_correlation"] = grouped_correlation(
            groups[known], target[known], score[known], context["kmer_min_count"]
        )
    out["regional_correlation"] = grouped_correlation(
        context["region_groups"][valid], target[valid], score[valid], context["regional_min_bases"]
    )
    if context["motif"] is not None:
        for name, where in (("at_motifs", context["motif"]), ("elsewhere", ~context["motif"])):
            chosen = valid & where
            out[f"per_base_auroc_{name}"] = auroc(score[chosen], target[chosen])
            out[f"per_base_auprc_{name}"] = average_precision(score[chosen], target[chosen])
            out[f"pearson_true_rate_{name}"] = pearson(score[chosen], rate[chosen])
    if context["real"] is not None:
        real = context["real"][valid]
        area = auroc(score[valid], real)
        out["real_snv_auroc"] = area
        out["real_snv_auroc_se"] = auroc_standard_error(area, int(real.sum()), int((~real).sum()))
        out["real_snv_auprc"] = average_precision(score[valid], real)
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
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate(cfg: DictConfig) -> dict:
    """Score every method on the held-out records; returns the results (as written to JSON)."""
    train, held_out = load_splits(cfg)
    base_scores, class_scores, classes = model_scores(cfg, held_out)
    if classes != held_out.classes:
        raise SeqmodelInputError(
            cfg.ckpt_path,
            None,
            f"the checkpoint's classes {classes} differ from the data's {held_out.classes}",
        )
    valid = held_out.tokens < 4
    context = {
        "valid": valid,
        "target": held_out.base_target >= 0.5,
        "true_rate": held_out.true_rate.astype(np.float64),
        "kmer_groups": {k: _kmer_groups(held_out, k) for k in KMER_CORRELATION_SIZES},
        "region_groups": _region_groups(held_out, int(cfg.metrics.regional_window)),
        "kmer_min_count": int(cfg.metrics.kmer_min_count),
        "regional_min_bases": int(cfg.metrics.regional_min_bases),
        "motif": _site_mask(cfg.hits, held_out) >= 0.5 if cfg.hits else None,
        "real": _site_mask(cfg.real_mutations, held_out) >= 0.5 if cfg.real_mutations else None,
        "genomes": vcf_allele_number(cfg.data.mutations) if cfg.data.mutations else None,
    }
    per_base = {"model": base_scores}
    train_tokens = _records(train, train.tokens)
    for k in cfg.baselines.kmer_sizes:
        kmer = KmerRateModel.fit(
            train_tokens, _records(train, train.base_target), int(k), cfg.baselines.prior_strength
        )
        per_base[f"kmer{k}"] = np.concatenate([kmer.predict(t) for t in _records(held_out, held_out.tokens)])
    if np.isfinite(held_out.true_rate[valid]).any():
        per_base["oracle"] = held_out.true_rate.astype(np.float64)
    if cfg.real_mutations:
        real_train = _records(train, _site_mask(cfg.real_mutations, train))
        kmer = KmerRateModel.fit(train_tokens, real_train, 3, cfg.baselines.prior_strength)
        per_base["kmer3_real"] = np.concatenate(
            [kmer.predict(t) for t in _records(held_out, held_out.tokens)]
        )
    per_sequence = {"model": class_scores}
    if cfg.baselines.pwm_motifs:
        motif = select_motif(
            read_motifs(cfg.baselines.pwm_motifs), cfg.baselines.pwm_motif_id, cfg.baselines.pwm_motifs
        )
        per_sequence["pwm"] = pwm_sequence_scores(
            _records(held_out, held_out.tokens), motif.pwm(DEFAULT_PSEUDOCOUNT)
        )

    results: dict = {}
    num_classes = len(held_out.classes)
    labelled = len(np.unique(held_out.labels)) > 1
    for method in [*per_base, *(m for m in per_sequence if m not in per_base)]:
        row = per_base_metrics(per_base[method], context) if method in per_base else {}
        if method in per_sequence and labelled:
            row |= sequence_metrics(per_sequence[method], held_out.labels, num_classes)
        results[method] = row
    keys = sorted({key for row in results.values() for key in row})
    results = {method: {key: row.get(key) for key in keys} for method, row in results.items()}
    results = _clean(results)
    results["gap_closure_vs_kmer7"] = gap_closure(results, "per_base_auprc")
    results["gap_closure_vs_kmer7_by_metric"] = {m: gap_closure(results, m) for m in GAP_METRICS}
    results["evaluation"] = {
        "checkpoint": str(cfg.ckpt_path),
        "training_fasta": str(cfg.data.fasta),
        "held_out": str(cfg.held_out or f"{cfg.data.fasta} test split"),
        "held_out_records": len(held_out),
        "held_out_bases": int(valid.sum()),
        "held_out_mutated_fraction": float(context["target"][valid].mean()) if valid.any() else None,
        "held_out_motif_bases": None if context["motif"] is None else int((context["motif"] & valid).sum()),
        "held_out_real_mutations": None if context["real"] is None else int((context["real"] & valid).sum()),
        "training_records": len(train),
        "training_bases": int((train.tokens < 4).sum()),
        "classes": held_out.classes,
        "genomes": context["genomes"],
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    return results


def format_table(results: dict) -> str:
    """The main metrics, one row per method ('-' where a metric does not apply)."""
    methods = [
        m
        for m, row in results.items()
        if isinstance(row, dict) and m != "evaluation" and not m.startswith("gap")
    ]
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
    return "\n".join(lines)


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
    return results


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except SeqmodelInputError as error:
        if os.environ.get("SEQMODEL_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    register_resolvers()
    _hydra_main()


if __name__ == "__main__":
    main()
