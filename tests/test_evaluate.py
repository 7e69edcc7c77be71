"""seqmodel-evaluate: metrics, held-out selection and the results JSON, on the demo data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from seqmodel.config import CONFIG_DIR, DEMO_DATA_DIR, register_resolvers
from seqmodel.io.fasta import load_fasta
from seqmodel.errors import SeqmodelInputError
from seqmodel.evaluate import evaluate, gap_closure
from seqmodel.metrics import auroc, average_precision, grouped_correlation, pearson, spearman
from seqmodel.prepare import prepare

METHODS = {"model", "kmer3", "kmer5", "kmer7", "pwm", "oracle"}
PWM = [
    f"baselines.pwm_motifs={DEMO_DATA_DIR / 'jaspar2024_selected.jaspar'}",
    "baselines.pwm_motif_id=MA0139.1",
]


def config(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("evaluate", overrides=list(overrides))


@pytest.mark.parametrize("seed", range(3))
def test_ranking_metrics_match_torchmetrics(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random(2000)
    labels = rng.random(2000) < 0.05 + 0.2 * scores
    tied = np.round(scores * 5)
    expected_auroc = float(binary_auroc(torch.tensor(tied), torch.tensor(labels).long()))
    expected_ap = float(binary_average_precision(torch.tensor(scores), torch.tensor(labels).long()))
    assert auroc(tied, labels) == pytest.approx(expected_auroc, abs=1e-6)
    assert average_precision(scores, labels) == pytest.approx(expected_ap, abs=1e-6)


def test_average_precision_takes_tied_scores_in_random_order():
    # Two positives among four tied items: the mean AP over the 6 placements of the positives.
    placements = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    expected = np.mean([(1 / a + 2 / b) / 2 for a, b in placements])
    assert average_precision(np.ones(4), np.array([1, 0, 0, 1], bool)) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    scores, labels = np.round(rng.random(500) * 3), rng.random(500) < 0.3
    shuffled = [average_precision(scores + 1e-9 * rng.random(500), labels) for _ in range(400)]
    assert average_precision(scores, labels) == pytest.approx(np.mean(shuffled), abs=3e-3)


def test_undefined_metrics_are_nan_not_errors():
    assert math.isnan(auroc(np.arange(4.0), np.zeros(4, bool)))
    assert math.isnan(average_precision(np.arange(4.0), np.zeros(4, bool)))
    assert math.isnan(pearson(np.ones(5), np.arange(5.0)))
    assert spearman(np.array([1.0, 2, 3, np.nan]), np.array([3.0, 2, 1, 0])) == pytest.approx(-1)


def test_grouped_correlation_compares_group_means():
    groups = np.array([0, 0, 1, 1, 2, 2, 3])
    observed = np.array([0, 1, 1, 1, 0, 0, 1.0])
    predicted = np.array([0.4, 0.6, 0.9, 1.1, 0.1, -0.1, 5.0])
    # Group 3 has one member: left out with min_size=2; means (0.5, 1, 0) vs (0.5, 1, 0).
    assert grouped_correlation(groups, observed, predicted, min_size=2) == pytest.approx(1.0)


def test_gap_closure_is_the_share_of_the_oracle_gap_closed():
    results = {"model": {"m": 0.5}, "kmer7": {"m": 0.2}, "oracle": {"m": 0.8}}
    assert gap_closure(results, "m") == pytest.approx(0.5)
    assert gap_closure({"model": {"m": 0.5}, "kmer7": {"m": 0.2}}, "m") is None


@pytest.fixture(scope="module")
def demo_results(tiny_checkpoint):
    cfg = config(
        f"ckpt_path={tiny_checkpoint}",
        f"hits={DEMO_DATA_DIR / 'ctcf_demo.ctcf_hits.bed'}",
        f"real_mutations={DEMO_DATA_DIR / 'ctcf_demo.mutations.vcf.gz'}",
        *PWM,
    )
    return evaluate(cfg)


def test_every_method_is_scored_and_the_oracle_matches_the_true_rate(demo_results):
    assert METHODS | {"kmer3_real"} <= set(demo_results)
    oracle, model = demo_results["oracle"], demo_results["model"]
    assert oracle["pearson_true_rate"] == pytest.approx(1.0) and oracle[
        "spearman_true_rate"
    ] == pytest.approx(1.0)
    assert 0 <= model["per_base_auprc"] <= 1 and 0 <= model["sequence_auroc"] <= 1
    assert oracle["per_base_auprc"] > demo_results["kmer7"]["per_base_auprc"]
    # On CTCF peaks vs background the CTCF PWM scan alone separates the classes well.
    assert demo_results["pwm"]["sequence_auroc"] > 0.9 and demo_results["pwm"]["per_base_auroc"] is None
    assert demo_results["kmer3"]["sequence_auroc"] is None
    assert demo_results["gap_closure_vs_kmer7"] == pytest.approx(
        (model["per_base_auprc"] - demo_results["kmer7"]["per_base_auprc"])
        / (oracle["per_base_auprc"] - demo_results["kmer7"]["per_base_auprc"])
    )
    info = demo_results["evaluation"]
    assert info["held_out_records"] == 100 and info["held_out_motif_bases"] > 0


def test_pearson_on_the_target_scale_uses_the_genomes_of_the_vcf(demo_results):
    assert demo_results["evaluation"]["genomes"] == 100
    oracle = demo_results["oracle"]
    # The oracle scores the per-genome rate; P(mutated in >= 1 of 100) is not linear in it.
    assert 0.5 < oracle["pearson_true_probability"] < oracle["pearson_true_rate"]


def test_metrics_at_motif_sites_and_elsewhere(demo_results):
    oracle = demo_results["oracle"]
    # Motif hits are hotspots: the mutated share, hence AUPRC, is far higher there.
    assert oracle["per_base_auprc_at_motifs"] > 2 * oracle["per_base_auprc_elsewhere"]


def test_real_mutations_are_ranked_by_every_per_base_method(demo_results):
    # Here the "real" VCF is the simulated one, so both rankings must agree exactly.
    for method in ("model", "kmer3", "oracle"):
        row = demo_results[method]
        assert row["real_snv_auroc"] == pytest.approx(row["per_base_auroc"])
        assert 0 < row["real_snv_auroc_se"] < 0.05
    assert demo_results["kmer3_real"]["per_base_auprc"] == pytest.approx(
        demo_results["kmer3"]["per_base_auprc"]
    )


def test_held_out_records_overlapping_training_records_are_an_error(tiny_checkpoint):
    cfg = config(f"ckpt_path={tiny_checkpoint}", f"held_out={DEMO_DATA_DIR / 'ctcf_demo.fa.gz'}")
    with pytest.raises(SeqmodelInputError, match="record chr1:5574687-5574887 overlaps held-out record"):
        evaluate(cfg)


def test_a_prepared_regional_split_is_scored_on_its_test_file(tiny_checkpoint, tmp_path):
    out = tmp_path / "prepared"
    prepare(["--sequences", str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"), "--out", str(out)])
    cfg = config(
        f"ckpt_path={tiny_checkpoint}",
        f"data.fasta={out / 'train.fa.gz'}",
        "data.test_fraction=0",
        f"held_out={out / 'test.fa.gz'}",
    )
    results = evaluate(cfg)
    assert results["evaluation"]["held_out_records"] == len(load_fasta(out / "test.fa.gz"))
    assert results["evaluation"]["training_records"] == round(0.9 * len(load_fasta(out / "train.fa.gz")))


def run_evaluate(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "seqmodel.evaluate", f"hydra.run.dir={tmp_path / 'hydra'}", *overrides]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_cli_writes_the_json_and_a_table(tiny_checkpoint, tmp_path):
    output = tmp_path / "results.json"
    result = run_evaluate(tmp_path, f"ckpt_path={tiny_checkpoint}", f"output={output}", *PWM)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(output.read_text())
    assert METHODS <= set(results) and "gap_closure_vs_kmer7" in results
    assert "| model |" in result.stdout and "gap closure vs kmer7" in result.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".results")] == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["output=OUT/results.txt"], "output must be a .json file"),
        (["ckpt_path=missing.ckpt"], "checkpoint not found"),
        (["baselines.pwm_motifs=MOTIFS", "baselines.pwm_motif_id=MA9999.9"], "no motif with id 'MA9999.9'"),
    ],
)
def test_bad_input_is_one_line_and_no_output(tiny_checkpoint, tmp_path, overrides, expected):
    motifs = str(DEMO_DATA_DIR / "jaspar2024_selected.jaspar")
    overrides = [o.replace("OUT", str(tmp_path)).replace("MOTIFS", motifs) for o in overrides]
    if not any(o.startswith("output=") for o in overrides):
        overrides.append(f"output={tmp_path / 'r.json'}")
    result = run_evaluate(tmp_path, f"ckpt_path={tiny_checkpoint}", *overrides)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and expected in result.stderr
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "results.txt").exists()
