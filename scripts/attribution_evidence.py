"""Evidence on seqmodel-explain and seqmodel-score-variants for a trained CTCF checkpoint.

    OMP_NUM_THREADS=1 python scripts/attribution_evidence.py [--work /tmp/attribution_evidence] \
        [--stages explain,modisco,variants,figure] [--n-variants 1000] [--seed 0]

Everything runs through the command-line tools (`seqmodel-explain`, `seqmodel-score-variants`,
`modisco motifs`), one at a time, with OMP_NUM_THREADS=1; intermediate files go to `--work`
(reused when present: delete them to rerun a stage), the one figure to `docs/explain_ctcf.png`,
and every number to `<work>/evidence.json` (also printed).

1. Attribution vs the simulated hotspots: on the 100 held-out CTCF test records (200 bp each),
   the AUROC of the per-base contribution (signed, the headline, and absolute) for the bases
   inside the MA0139.1 hits of `hits.bed` (hotspots of the simulation the model was trained on)
   against all other bases; ISM and IG, head=base and head=class explain.target=1.
2. modisco-lite on those attributions; each pattern's PPM is compared to the 14 JASPAR motifs
   of data/jaspar2024_selected.jaspar (Pearson correlation of the aligned frequency matrices,
   best offset and strand, full overlap of the motif) with an empirical p-value against
   column-shuffled MA0139.1.
3. Real BRCA SNVs on chr20 vs random chr20 positions with the same (REF-strand) trinucleotide
   and the same ALT: AUROC of `risk` (and of the other scores), paired bootstrap 95 % interval.
4. Throughput from each tool's own timing line.
5. The example figure: ISM of a chr20 test record holding two MA0139.1 hits, read from the genome.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "outputs" / "joint_selection" / "sim11"
TEST_FASTA = ROOT / "data" / "prepared" / "ctcf" / "test.fa.gz"
JASPAR = ROOT / "data" / "jaspar2024_selected.jaspar"
SHARED = Path("/work/shared/data")
GENOME = SHARED / "genome" / "GRCh37_chr20.fa.gz"
BRCA = SHARED / "bench" / "brca100_chr20_snvs.tsv.gz"
FIGURE = ROOT / "docs" / "explain_ctcf.png"
FIGURE_REGION = ("chr20", 47950548, 47950748)  # test record with two MA0139.1 hits (scores 987, 927)
RUNS = {  # name -> (method, head, extra overrides)
    "ism_base": ("ism", "base", []),
    "ig_base": ("ig", "base", []),
    "ig_class": ("ig", "class", ["explain.target=1"]),
    "ism_class": ("ism", "class", ["explain.target=1"]),
}
COMP = np.array([3, 2, 1, 0])  # A C G T -> T G C A


def checkpoint() -> Path:
    best = SIM / "joint_seed0" / "checkpoints" / "best.ckpt"
    if best.exists():
        return best
    found = sorted(SIM.glob("*/checkpoints/best.ckpt"))
    if not found:
        sys.exit(f"no checkpoint under {SIM}")
    return found[0]


def tool(name: str) -> list[str]:
    """The console script of the venv, else `python -m` its module."""
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    module = {"seqmodel-explain": "seqmodel.explain", "seqmodel-score-variants": "seqmodel.score_variants"}
    return [sys.executable, "-m", module[name]]


def run(command: list[str], log: Path) -> tuple[str, float]:
    """Run `command` (one thread), its output to `log`; returns stdout+stderr and the wall time."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print("+", " ".join(command), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    text = done.stdout + done.stderr
    log.write_text(" ".join(command) + "\n" + text + f"\nwall_seconds={wall:.2f}\n")
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{text[-3000:]}")
    return text, wall


def cached(log: Path) -> tuple[str, float]:
    """The output and wall time a previous `run` logged."""
    text = log.read_text()
    match = re.search(r"^wall_seconds=([\d.]+)$", text, re.M)
    return text, float(match[1]) if match else float("nan")


# --- statistics ------------------------------------------------------------------------------


def ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUROC of `scores` for `labels` (bool), ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return float("nan")
    r = ranks(scores)
    return float((r[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def interval(values: list[float]) -> list[float]:
    return [float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5))]


# --- inputs ----------------------------------------------------------------------------------


def test_records() -> list[tuple[str, str, str]]:
    """(id, header, sequence) of the test FASTA."""
    records, header, parts = [], None, []
    with gzip.open(TEST_FASTA, "rt") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if header is not None:
                    records.append((header.split()[0], header, "".join(parts)))
                header, parts = line[1:], []
            else:
                parts.append(line)
    records.append((header.split()[0], header, "".join(parts)))
    return records


def parse_id(record_id: str) -> tuple[str, int, int]:
    chrom, span = record_id.rsplit(":", 1)
    start, end = span.split("-")
    return chrom, int(start), int(end)


def read_hits() -> list[tuple[str, int, int, int, str]]:
    rows = []
    for line in (SIM / "hits.bed").read_text().splitlines():
        chrom, start, end, _, score, strand = line.split("\t")[:6]
        rows.append((chrom, int(start), int(end), int(score), strand))
    return rows


def hit_masks(records, hits) -> dict[str, np.ndarray]:
    """Per test record: True at the bases inside a MA0139.1 hit (hits.bed is in genome coordinates)."""
    masks = {}
    for record_id, _, sequence in records:
        chrom, start, end = parse_id(record_id)
        mask = np.zeros(len(sequence), dtype=bool)
        for h_chrom, h_start, h_end, _, _ in hits:
            if h_chrom == chrom and h_start < end and h_end > start:
                mask[max(h_start, start) - start : min(h_end, end) - start] = True
        masks[record_id] = mask
    return masks


def read_jaspar() -> dict[str, np.ndarray]:
    """motif id -> (L, 4) frequencies (A C G T)."""
    motifs, name, rows = {}, None, []
    for line in JASPAR.read_text().splitlines():
        if line.startswith(">"):
            if name:
                motifs[name] = np.array(rows, dtype=float).T
            name, rows = line[1:].split()[0], []
        elif line.strip():
            rows.append([float(v) for v in re.findall(r"[-\d.]+", line.split("[", 1)[1])])
    motifs[name] = np.array(rows, dtype=float).T
    return {k: v / v.sum(axis=1, keepdims=True) for k, v in motifs.items()}


# --- 1. attributions -------------------------------------------------------------------------


def explain_runs(work: Path, ckpt: Path, names: list[str]) -> dict:
    results = {}
    for name in names:
        method, head, extra = RUNS[name]
        out = work / f"{name}.npz"
        log = work / f"{name}.log"
        command = [
            *tool("seqmodel-explain"),
            f"ckpt_path={ckpt}",
            f"input={TEST_FASTA}",
            f"output={out}",
            f"head={head}",
            f"explain.method={method}",
            *extra,
            f"hydra.run.dir={work / 'hydra' / name}",
        ]
        if out.exists() and log.exists():
            text, wall = cached(log)
        else:
            text, wall = run(command, log)
        match = re.search(r"explained ([\d,]+) sequences \(([\d,]+) bases\) in ([\d.]+) s", text)
        sequences, bases = (int(match[k].replace(",", "")) for k in (1, 2))
        seconds = float(match[3])
        results[name] = {
            "command": " ".join(command),
            "sequences": sequences,
            "bases": bases,
            "seconds": seconds,
            "wall_seconds": wall,
            "bases_per_second": bases / seconds,
            "threads": 1,
        }
    return results


def attribution_auroc(work: Path, names: list[str], records, masks, seed: int) -> dict:
    labels = {record_id: header for record_id, header, _ in records}
    with_hits = {record_id for record_id, mask in masks.items() if mask.any()}
    rng = np.random.default_rng(seed)
    results = {}
    for name in names:
        arrays = np.load(work / f"{name}.npz")
        ids = [record_id for record_id, _, _ in records]
        contrib = {record_id: arrays[record_id].astype(np.float64) for record_id in ids}
        row = {}
        for subset_name, subset in (
            ("all_records", ids),
            ("records_with_hits", [i for i in ids if i in with_hits]),
            ("ctcf_peaks_label1", [i for i in ids if "label=1" in labels[i].split()]),
        ):
            values = np.concatenate([contrib[i] for i in subset])
            mask = np.concatenate([masks[i] for i in subset])
            keep = ~np.isnan(values)
            row[subset_name] = {
                "records": len(subset),
                "bases": int(keep.sum()),
                "hit_bases": int(mask[keep].sum()),
                "auroc_signed": auroc(values[keep], mask[keep]),
                "auroc_abs": auroc(np.abs(values[keep]), mask[keep]),
            }
        # Bootstrap over records (all 100), for both variants.
        boots = {"signed": [], "abs": []}
        for _ in range(500):
            pick = rng.integers(0, len(ids), len(ids))
            values = np.concatenate([contrib[ids[k]] for k in pick])
            mask = np.concatenate([masks[ids[k]] for k in pick])
            keep = ~np.isnan(values)
            boots["signed"].append(auroc(values[keep], mask[keep]))
            boots["abs"].append(auroc(np.abs(values[keep]), mask[keep]))
        row["all_records"]["ci95_signed"] = interval(boots["signed"])
        row["all_records"]["ci95_abs"] = interval(boots["abs"])
        # Mean contribution inside vs outside hits, and the per-record AUROC (records with hits).
        values = np.concatenate([contrib[i] for i in ids])
        mask = np.concatenate([masks[i] for i in ids])
        row["mean_contribution_in_hits"] = float(np.nanmean(values[mask]))
        row["mean_contribution_outside"] = float(np.nanmean(values[~mask]))
        per_record = [auroc(contrib[i], masks[i]) for i in ids if i in with_hits]
        row["per_record_auroc_signed_median"] = float(np.nanmedian(per_record))
        # Completeness (IG): contribution sum vs f(x) - f(baseline), from <stem>.scores.tsv.
        table = (work / f"{name}.scores.tsv").read_text().splitlines()[1:]
        fields = [line.split("\t") for line in table]
        if fields and fields[0][3] != "NA":
            gap = [float(f[2]) - float(f[3]) - float(f[4]) for f in fields]
            scale = [abs(float(f[2]) - float(f[3])) for f in fields]
            row["ig_completeness_max_abs_gap"] = float(np.max(np.abs(gap)))
            row["ig_completeness_median_rel_gap"] = float(np.median(np.abs(gap) / np.maximum(scale, 1e-30)))
        row["by_motif_position"] = motif_profile(contrib, records)
        outside = np.concatenate([contrib[i][~masks[i]] for i in ids])
        row["by_motif_position"]["fraction_of_other_bases_positive"] = float(np.nanmean(outside > 0))
        # Signed AUROC of the confident motif positions only (information >= 1 bit) vs other bases.
        strong = np.array(row["by_motif_position"]["information_bits"]) >= 1
        row["auroc_signed_high_ic_positions_only"] = strong_position_auroc(contrib, records, masks, strong)
        results[name] = row
    return results


def strong_position_auroc(contrib, records, masks, strong: np.ndarray) -> float:
    """Signed AUROC of the hit bases at motif positions flagged `strong` against the bases outside
    every hit (the other hit bases left out)."""
    positives, negatives = [], []
    for record_id, _, _ in records:
        chrom, start, end = parse_id(record_id)
        values = contrib[record_id]
        negatives.append(values[~masks[record_id]])
        for h_chrom, h_start, h_end, _, strand in read_hits():
            if h_chrom == chrom and h_start >= start and h_end <= end:
                flags = strong[::-1] if strand == "-" else strong
                positives.append(values[h_start - start : h_end - start][flags])
    pos, neg = np.concatenate(positives), np.concatenate(negatives)
    neg = neg[~np.isnan(neg)]
    return auroc(np.r_[pos, neg], np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)])


def motif_profile(contrib: dict[str, np.ndarray], records) -> dict:
    """Per position of MA0139.1 (hits read on their strand): the information content, the mean
    signed contribution and the fraction of hit bases whose contribution is positive."""
    ppm = read_jaspar()["MA0139.1"]
    information = 2 + (ppm * np.log2(np.clip(ppm, 1e-9, None))).sum(axis=1)
    values = [[] for _ in range(len(ppm))]
    for record_id, _, _ in records:
        chrom, start, end = parse_id(record_id)
        for h_chrom, h_start, h_end, _, strand in read_hits():
            if h_chrom == chrom and h_start >= start and h_end <= end:
                segment = contrib[record_id][h_start - start : h_end - start]
                for i, value in enumerate(segment[::-1] if strand == "-" else segment):
                    values[i].append(value)
    return {
        "information_bits": [round(float(v), 2) for v in information],
        "mean_contribution": [float(np.mean(v)) for v in values],
        "fraction_positive": [round(float(np.mean(np.array(v) > 0)), 2) for v in values],
        "fraction_of_hit_bases_negative": float(np.mean(np.concatenate(values) < 0)),
        "fraction_of_other_bases_positive": None,  # filled by the caller
    }


# --- 2. modisco --------------------------------------------------------------------------------


def reverse_complement(ppm: np.ndarray) -> np.ndarray:
    return ppm[::-1][:, COMP]


def best_alignment(pattern: np.ndarray, motif: np.ndarray) -> tuple[float, int, str]:
    """Max Pearson correlation of the flattened frequencies over offsets (the motif wholly inside
    the pattern, or the pattern inside the motif when shorter) and both strands of the motif."""
    best = (-2.0, 0, "+")
    for strand, m in (("+", motif), ("-", reverse_complement(motif))):
        short, long_ = (m, pattern) if len(m) <= len(pattern) else (pattern, m)
        for offset in range(len(long_) - len(short) + 1):
            window = long_[offset : offset + len(short)]
            r = float(np.corrcoef(short.ravel(), window.ravel())[0, 1])
            if r > best[0]:
                best = (r, offset, strand)
    return best


def compare_patterns(
    h5_path: Path, motifs: dict[str, np.ndarray], masks_by_index: list[np.ndarray], seed: int
) -> list[dict]:
    import h5py

    rng = np.random.default_rng(seed)
    ctcf = motifs["MA0139.1"]
    rows = []
    with h5py.File(h5_path, "r") as h5:
        for group in ("pos_patterns", "neg_patterns"):
            if group not in h5:
                continue
            for name in sorted(h5[group], key=lambda k: int(k.split("_")[1])):
                pattern = h5[group][name]
                ppm = np.asarray(pattern["sequence"], dtype=float)
                contrib = np.asarray(pattern["contrib_scores"], dtype=float)
                seqlets = pattern["seqlets"]
                n = int(np.asarray(seqlets["n_seqlets"])[0])
                # Trim to the columns carrying at least 30 % of the peak |contribution| (modisco's
                # report trims the same way) before reporting the consensus.
                strength = np.abs(contrib).sum(axis=1)
                kept = np.flatnonzero(strength >= 0.3 * strength.max())
                trimmed = ppm[kept[0] : kept[-1] + 1]
                consensus = "".join("ACGT"[i] for i in trimmed.argmax(axis=1))
                scores = {mid: best_alignment(ppm, m)[0] for mid, m in motifs.items()}
                r, offset, strand = best_alignment(ppm, ctcf)
                null = [best_alignment(ppm, ctcf[rng.permutation(len(ctcf))])[0] for _ in range(200)]
                # How many of the pattern's seqlets overlap a hotspot hit.
                starts = np.asarray(seqlets["start"])
                ends = np.asarray(seqlets["end"])
                examples = np.asarray(seqlets["example_idx"])
                overlap = [
                    bool(masks_by_index[e][max(s, 0) : max(t, 0)].any())
                    for e, s, t in zip(examples, starts, ends, strict=True)
                ]
                ranking = sorted(scores, key=scores.get, reverse=True)
                rows.append(
                    {
                        "pattern": f"{group}/{name}",
                        "n_seqlets": n,
                        "length": len(ppm),
                        "consensus_trimmed": consensus,
                        "pearson_MA0139.1": r,
                        "offset": offset,
                        "strand": strand,
                        "p_vs_column_shuffled_MA0139.1": (1 + sum(v >= r for v in null)) / (1 + len(null)),
                        "best_jaspar": ranking[0],
                        "best_jaspar_pearson": scores[ranking[0]],
                        "rank_of_MA0139.1": ranking.index("MA0139.1") + 1,
                        "seqlets_overlapping_hits": f"{sum(overlap)}/{len(overlap)}",
                    }
                )
    return rows


def modisco_runs(work: Path, names: list[str], records, masks, seed: int) -> dict:
    motifs = read_jaspar()
    results = {}
    for name in names:
        stem = work / name
        out = work / f"{name}.modisco.h5"
        log = work / f"{name}.modisco.log"
        # Records in the order of the npz stack (the test FASTA's order), offsets from the file.
        onehot = np.load(f"{stem}.modisco_onehot.npz")
        ids, offsets = list(onehot["ids"]), onehot["offsets"]
        width = onehot["arr_0"].shape[-1]
        stacked = []
        for record_id, offset in zip(ids, offsets, strict=True):
            mask = np.zeros(width, dtype=bool)
            mask[offset : offset + len(masks[str(record_id)])] = masks[str(record_id)]
            stacked.append(mask)
        command = [
            str(Path(sys.executable).with_name("modisco")),
            "motifs",
            "-s", f"{stem}.modisco_onehot.npz",
            "-a", f"{stem}.modisco_hypothetical.npz",
            "-n", "2000", "-w", str(width), "-v",
            "-o", str(out),
        ]  # fmt: skip
        if out.exists() and log.exists():
            text, wall = cached(log)
        else:
            text, wall = run(command, log)
        positive = re.search(r"Using (\d+) positive seqlets", text)
        negative = re.search(r"Extracted (\d+) negative seqlets", text)
        results[name] = {
            "command": " ".join(command),
            "wall_seconds": wall,
            "positive_seqlets": int(positive[1]) if positive else None,
            "negative_seqlets": int(negative[1]) if negative else None,
            "patterns": compare_patterns(out, motifs, stacked, seed),
        }
    # The reference: MA0139.1 against the other JASPAR motifs of the file (what a match looks like).
    results["jaspar_reference"] = {
        mid: best_alignment(motifs["MA0139.1"], m)[0] for mid, m in motifs.items() if mid != "MA0139.1"
    }
    return results


# --- 3. variants -----------------------------------------------------------------------------


def write_vcf(path: Path, rows: list[tuple[int, str, str]], length: int) -> None:
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID=20,length={length}>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    lines += [f"20\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\t." for pos, ref, alt in sorted(rows)]
    path.write_text("\n".join(lines) + "\n")


def read_scores(path: Path) -> dict[tuple[int, str], dict[str, float]]:
    header, out = None, {}
    for line in path.read_text().splitlines():
        if line.startswith("##"):
            continue
        fields = line.split("\t")
        if header is None:
            header = fields
            continue
        row = dict(zip(header, fields, strict=True))
        out[(int(row["pos"]) - 1, row["alt"])] = {k: float(row[k]) for k in header[4:]}
    return out


def variant_runs(work: Path, ckpt: Path, n: int, seed: int) -> dict:
    from seqmodel.io.genome import Genome

    rng = np.random.default_rng(seed)
    genome = Genome(str(GENOME))
    tokens = genome.sequence("20")
    length = len(tokens)
    # Real SNVs: unique (pos, ref, alt), REF and trinucleotide checked against the genome.
    sites, checked = {}, {"rows": 0, "ref_mismatch": 0, "trinuc_mismatch": 0}
    with gzip.open(BRCA, "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        for line in handle:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=True))
            checked["rows"] += 1
            pos = int(row["pos_1based"]) - 1
            context = "".join("ACGTN"[t] for t in tokens[pos - 1 : pos + 2])
            if context[1] != row["ref"]:
                checked["ref_mismatch"] += 1
                continue
            if context != row["trinuc"]:
                checked["trinuc_mismatch"] += 1
                continue
            sites[(pos, row["ref"], row["alt"])] = context
    real_positions = {pos for pos, _, _ in sites}
    keys = sorted(sites)
    pick = rng.choice(len(keys), size=min(n, len(keys)), replace=False)
    real = [keys[i] for i in sorted(pick)]
    # Controls: the same trinucleotide on the same strand (so the same REF), the same ALT.
    code = np.full(length, 255, dtype=np.uint8)
    left, mid, right = (tokens[k : length - 2 + k].astype(np.int32) for k in range(3))
    valid = (left < 4) & (mid < 4) & (right < 4)
    code[1:-1] = np.where(valid, left * 16 + mid * 4 + right, 255)
    code[list(real_positions)] = 255  # never a position with a real BRCA SNV
    wanted: dict[int, list[int]] = {}
    for index, site in enumerate(real):
        wanted.setdefault(code_of(sites[site]), []).append(index)
    control = [None] * len(real)
    for context, indices in wanted.items():
        candidates = np.flatnonzero(code == context)
        chosen = rng.choice(candidates, size=len(indices), replace=False)
        for index, pos in zip(indices, chosen, strict=True):
            control[index] = (int(pos), real[index][1], real[index][2])
    real_vcf, control_vcf = work / "brca_real.vcf", work / "brca_control.vcf"
    write_vcf(real_vcf, real, length)
    write_vcf(control_vcf, control, length)
    results = {"input_check": checked, "unique_real_sites": len(keys), "pairs": len(real)}
    scored = {}
    for label, vcf in (("real", real_vcf), ("control", control_vcf)):
        out = work / f"brca_{label}.scores.tsv"
        log = work / f"brca_{label}.log"
        command = [
            *tool("seqmodel-score-variants"),
            f"ckpt_path={ckpt}",
            f"vcf={vcf}",
            f"genome={GENOME}",
            f"output={out}",
            f"hydra.run.dir={work / 'hydra' / ('score_' + label)}",
        ]
        text, wall = run(command, log)
        match = re.search(r"scored ([\d,]+) of ([\d,]+) SNVs in ([\d.]+) s", text)
        count, seconds = int(match[1].replace(",", "")), float(match[3])
        results[f"throughput_{label}"] = {
            "command": " ".join(command),
            "scored": count,
            "seconds": seconds,
            "wall_seconds": wall,
            "variants_per_second": count / seconds,
            "threads": 1,
        }
        scored[label] = read_scores(out)
    pairs = [
        (scored["real"][(r[0], r[2])], scored["control"][(c[0], c[2])])
        for r, c in zip(real, control, strict=True)
        if (r[0], r[2]) in scored["real"] and (c[0], c[2]) in scored["control"]
    ]
    results["scored_pairs"] = len(pairs)
    labels = np.r_[np.ones(len(pairs), bool), np.zeros(len(pairs), bool)]
    for column in pairs[0][0]:
        a = np.array([p[0][column] for p in pairs])
        b = np.array([p[1][column] for p in pairs])
        values = np.r_[a, b]
        boots, unpaired = [], []
        for _ in range(2000):
            k = rng.integers(0, len(pairs), len(pairs))
            boots.append(auroc(np.r_[a[k], b[k]], labels))
            j = rng.integers(0, len(pairs), len(pairs))
            unpaired.append(auroc(np.r_[a[k], b[j]], labels))
        results[column] = {
            "auroc_real_vs_control": auroc(values, labels),
            "ci95_paired_bootstrap": interval(boots),
            "ci95_unpaired_bootstrap": interval(unpaired),
            "auroc_abs": auroc(np.abs(values), labels),
            "fraction_pairs_real_higher": float(np.mean(a > b) + 0.5 * np.mean(a == b)),
            "median_real": float(np.median(a)),
            "median_control": float(np.median(b)),
        }
    # Does the model's risk carry the trinucleotide at all? (spread of the per-context medians)
    by_context: dict[str, list[float]] = {}
    for site in real:
        if (site[0], site[2]) in scored["real"]:
            by_context.setdefault(sites[site], []).append(scored["real"][(site[0], site[2])]["risk"])
    medians = {k: float(np.median(v)) for k, v in by_context.items() if len(v) >= 10}
    results["risk_median_by_trinuc_(n>=10)"] = dict(sorted(medians.items(), key=lambda kv: kv[1]))
    return results


def code_of(context: str) -> int:
    a, b, c = ("ACGT".index(x) for x in context)
    return a * 16 + b * 4 + c


# --- 5. figure ---------------------------------------------------------------------------------


def figure(work: Path, ckpt: Path, records) -> dict:
    from seqmodel.io.genome import Genome

    chrom, start, end = FIGURE_REGION
    record_id = f"{chrom}:{start}-{end}"
    sequence = {r[0]: r[2] for r in records}[record_id]
    genomic = "".join("ACGTN"[t] for t in Genome(str(GENOME)).fetch("20", start, end))
    bed = work / "figure_region.bed"
    bed.write_text(f"20\t{start}\t{end}\n")
    FIGURE.parent.mkdir(exist_ok=True)
    command = [
        *tool("seqmodel-explain"),
        f"ckpt_path={ckpt}",
        f"input={GENOME}",
        f"regions={bed}",
        f"output={work / 'figure.npz'}",
        "explain.method=ism",
        f"plot={FIGURE.relative_to(ROOT)}",
        f"hydra.run.dir={work / 'hydra' / 'figure'}",
    ]
    text, wall = run(command, work / "figure.log")
    hits = [(s - start, e - start, score, strand) for c, s, e, score, strand in read_hits()
            if c == chrom and s >= start and e <= end]  # fmt: skip
    values = np.load(work / "figure.npz")[f"20:{start}-{end}"]
    mask = np.zeros(end - start, dtype=bool)
    for s, e, _, _ in hits:
        mask[s:e] = True
    return {
        "command": " ".join(command),
        "record": record_id,
        "genome_matches_test_record": genomic.upper() == sequence.upper(),
        "hits_in_region_(offset_start,end,score,strand)": hits,
        "auroc_signed_in_region": auroc(values, mask),
        "top10_bases_inside_hits": int(mask[np.argsort(values)[::-1][:10]].sum()),
        "png_bytes": FIGURE.stat().st_size,
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/attribution_evidence")
    parser.add_argument("--stages", default="explain,modisco,variants,figure")
    parser.add_argument("--runs", default="ism_base,ig_base,ig_class,ism_class")
    parser.add_argument("--n-variants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stages, names = args.stages.split(","), args.runs.split(",")
    ckpt = checkpoint()
    records = test_records()
    masks = hit_masks(records, read_hits())
    summary_path = work / "evidence.json"
    evidence = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    evidence["checkpoint"] = str(ckpt)
    evidence["test_records"] = len(records)
    evidence["test_records_with_hits"] = int(sum(m.any() for m in masks.values()))
    evidence["test_hit_bases"] = int(sum(m.sum() for m in masks.values()))
    evidence["loadavg_at_start"] = os.getloadavg()
    if "explain" in stages:
        evidence["throughput_explain"] = explain_runs(work, ckpt, names)
        evidence["attribution_auroc"] = attribution_auroc(work, names, records, masks, args.seed)
    if "modisco" in stages:
        base_runs = [n for n in names if (work / f"{n}.modisco_onehot.npz").exists()]
        evidence["modisco"] = modisco_runs(work, base_runs, records, masks, args.seed)
    if "variants" in stages:
        evidence["variants"] = variant_runs(work, ckpt, args.n_variants, args.seed)
    if "figure" in stages:
        evidence["figure"] = figure(work, ckpt, records)
    evidence["loadavg_at_end"] = os.getloadavg()
    summary_path.write_text(json.dumps(evidence, indent=1, default=str))
    print(json.dumps(evidence, indent=1, default=str))


if __name__ == "__main__":
    main()
