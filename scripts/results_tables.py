"""The markdown tables of docs/results.md from the results.json files of scripts/reproduce_results.sh.

Usage: `python scripts/results_tables.py outputs/results > tables.md`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATASETS = (
    ("ctcf_joint", "CTCF peaks vs background (held-out 1-Mb blocks), CTCF hotspots"),
    ("p73_joint", "TAp73alpha peaks vs background (held-out 1-Mb blocks), TP53 hotspots"),
    ("chr20_joint", "chr20 36-44 Mb, 1-kb windows (held-out 500-kb blocks), CTCF hotspots, real BRCA SNVs"),
)
ABLATION = (
    ("ctcf_joint", "joint"),
    ("ctcf_base_only", "per-base only (w_seq=0)"),
    ("ctcf_seq_only", "sequence only (w_base=0)"),
)
METHOD_COLUMNS = (
    ("per_base_auroc", "AUROC"),
    ("per_base_auprc", "AUPRC"),
    ("per_base_auprc_at_motifs", "AUPRC motif"),
    ("per_base_auprc_elsewhere", "AUPRC else"),
    ("pearson_true_rate", "Pearson"),
    ("pearson_true_probability", "Pearson P"),
    ("spearman_true_rate", "Spearman"),
    ("kmer3_correlation", "3-mer r"),
    ("kmer5_correlation", "5-mer r"),
    ("kmer7_correlation", "7-mer r"),
    ("regional_correlation", "10-kb r"),
    ("sequence_auroc", "seq AUROC"),
    ("sequence_auprc", "seq AUPRC"),
    ("real_snv_auroc", "real SNV AUROC"),
)


def cell(value: float | None, se: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else "")


def method_table(results: dict) -> str:
    methods = [
        m
        for m, row in results.items()
        if isinstance(row, dict) and m != "evaluation" and not m.startswith("gap")
    ]
    columns = [(k, t) for k, t in METHOD_COLUMNS if any(results[m].get(k) is not None for m in methods)]
    lines = ["| method | " + " | ".join(t for _, t in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for method in methods:
        row = results[method]
        cells = [
            cell(row.get(k), row.get("real_snv_auroc_se") if k == "real_snv_auroc" else None)
            for k, _ in columns
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder holding <experiment>/results.json")
    runs = parser.parse_args().runs
    loaded = {p.parent.name: json.loads(p.read_text()) for p in sorted(runs.glob("*/results.json"))}
    out = []
    for name, title in DATASETS:
        if name not in loaded:
            continue
        results = loaded[name]
        info = results["evaluation"]
        closure = results["gap_closure_vs_kmer7_by_metric"]
        out += [
            f"### {title}",
            "",
            f"Held out: {info['held_out_records']} records, {info['held_out_bases']:,} bases "
            f"({100 * info['held_out_mutated_fraction']:.2f} % mutated, "
            f"{info['held_out_motif_bases'] or 0:,} in motif hits"
            + (
                f", {info['held_out_real_mutations']} real SNVs"
                if info["held_out_real_mutations"] is not None
                else ""
            )
            + f"); k-mer models fitted on {info['training_bases']:,} training bases.",
            "",
            method_table(results),
            "",
            "Gap closure vs kmer7, (model - kmer7) / (oracle - kmer7): "
            + ", ".join(f"{k} {cell(v)}" for k, v in closure.items()),
            "",
        ]
    if all(name in loaded for name, _ in ABLATION):
        keys = (
            ("per_base_auprc", "AUPRC"),
            ("pearson_true_probability", "Pearson P"),
            ("per_base_auprc_at_motifs", "AUPRC motif"),
            ("per_base_auprc_elsewhere", "AUPRC else"),
            ("pearson_true_rate_at_motifs", "Pearson motif"),
            ("pearson_true_rate_elsewhere", "Pearson else"),
            ("sequence_auroc", "seq AUROC"),
        )
        out += ["### Ablation (CTCF, held-out blocks; model rows)", ""]
        out += ["| training | " + " | ".join(t for _, t in keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for name, title in ABLATION:
            row = loaded[name]["model"]
            out.append(f"| {title} | " + " | ".join(cell(row.get(k)) for k, _ in keys) + " |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
