"""seqmodel-evaluate: metrics, held-out selection, calibration and the results JSON, on the demo data."""

from __future__ import annotations

import json
import logging
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
from seqmodel.errors import SeqmodelInputError
from seqmodel.evaluate import (
    Observations,
    _check_plot_path,
    evaluate,
    full_window_ids,
    gap_closure,
    load_splits,
    window_correlation,
)
from seqmodel.io.fasta import load_fasta
from seqmodel.metrics import (
    auroc,
    average_precision,
    binomial_deviance,
    grouped_correlation,
    pearson,
    spearman,
)
from seqmodel.prepare import prepare

METHODS = {"model", "kmer3", "kmer5", "kmer7", "pwm", "oracle"}
PWM = [
    f"baselines.pwm_motifs={DEMO_DATA_DIR / 'jaspar2024_selected.jaspar'}",
    "baselines.pwm_motif_id=MA0139.1",
]
# The demo simulation's hotspots: CTCF (MA0139.1) hits scoring >= 12 bits, rate x 20.
PWM_HITS = "++baselines.pwm_hit_threshold=12"
RATE_METHODS = ("model", "kmer3", "kmer5", "kmer7", "kmer3_pwm", "oracle")


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
def demo_plot(tmp_path_factory):
    return tmp_path_factory.mktemp("plot") / "calibration.png"


@pytest.fixture(scope="module")
def demo_results(tiny_checkpoint, demo_plot):
    cfg = config(
        f"ckpt_path={tiny_checkpoint}",
        f"hits={DEMO_DATA_DIR / 'ctcf_demo.ctcf_hits.bed'}",
        f"real_mutations={DEMO_DATA_DIR / 'ctcf_demo.mutations.vcf.gz'}",
        *PWM,
        PWM_HITS,
        "++metrics.bootstrap_replicates=50",
        f"++calibration_plot={demo_plot}",
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


def test_rate_correlations_on_the_rate_log_and_presence_scales(demo_results):
    assert demo_results["evaluation"]["genomes"] == 100
    oracle, kmer3 = demo_results["oracle"], demo_results["kmer3"]
    # Every method predicts the per-genome rate; P(>= 1 of 100 genomes) is computed from it on
    # both sides, so the oracle is exact on every scale.
    for key in ("pearson_true_rate", "pearson_true_rate_log", "pearson_true_probability"):
        assert oracle[key] == pytest.approx(1.0)
    # A 3-mer model misses the 20x hotspots: poor on the rate scale, good on the log scale.
    assert kmer3["pearson_true_rate"] < 0.6 < kmer3["pearson_true_rate_log"]


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
    # kmer3 is fitted on the carrier counts (kmer3_real on "mutated or not"), with its own
    # shrinkage: close, not equal.
    assert demo_results["kmer3_real"]["per_base_auprc"] == pytest.approx(
        demo_results["kmer3"]["per_base_auprc"], abs=0.01
    )
    # kmer3_real is a ranking: its scale is another cohort's, so no likelihood or calibration.
    assert demo_results["kmer3_real"]["binomial_deviance"] is None
    assert demo_results["kmer3_real"]["calibration"] is None


def test_deviance_calibration_and_the_oracle(demo_results):
    oracle = demo_results["oracle"]
    assert oracle["binomial_deviance_excess_over_oracle"] == pytest.approx(0.0)
    bases = demo_results["evaluation"]["held_out_bases"]
    assert oracle["binomial_deviance_per_base"] == pytest.approx(oracle["binomial_deviance"] / bases)
    for method in ("kmer3", "kmer5", "kmer7"):
        assert demo_results[method]["binomial_deviance"] > oracle["binomial_deviance"]
        assert demo_results[method]["binomial_deviance_excess_over_oracle"] > 0
    for method in RATE_METHODS:
        tables = demo_results[method]["calibration"]
        assert set(tables) == {"all", "at_motifs", "elsewhere"}
        assert len(tables["all"]) == 20 and sum(row["bases"] for row in tables["all"]) == bases
        expected = sum(row["expected"] for row in tables["all"])
        assert demo_results[method]["observed_expected_ratio"] == pytest.approx(
            sum(row["observed"] for row in tables["all"]) / expected
        )
    # The true rate is calibrated: O/E near 1, most bins' Poisson intervals hold the expected count.
    assert oracle["observed_expected_ratio"] == pytest.approx(1.0, abs=0.1)
    assert oracle["calibration_bins_covered"] >= 0.7
    carriers = demo_results["evaluation"]["held_out_carriers"]
    assert sum(row["observed"] for row in oracle["calibration"]["all"]) == carriers
    # A 3-mer model averages the 20x hotspots into its contexts: far too low inside the hits.
    inside = demo_results["kmer3"]["calibration"]["at_motifs"]
    assert sum(r["observed"] for r in inside) > 2 * sum(r["expected"] for r in inside)


def test_kmer3_pwm_recovers_the_simulated_hotspot_factor(demo_results):
    row = demo_results["kmer3_pwm"]
    assert 12 < row["motif_factor"] < 30  # simulated: x 20
    assert demo_results["evaluation"]["kmer3_pwm"]["threshold"] == 12.0
    # The class of model that generated the data: as good as the oracle, far better than kmer3.
    assert row["per_base_auprc"] > demo_results["kmer3"]["per_base_auprc"] + 0.1
    assert row["binomial_deviance"] < demo_results["kmer3"]["binomial_deviance"]
    assert row["pearson_true_rate"] > 0.95


def test_kmer_shrinkage_is_chosen_on_the_validation_split(demo_results):
    report = demo_results["evaluation"]["kmer_prior_strength"]
    assert demo_results["evaluation"]["validation_records"] == 100
    for k in (3, 5, 7):
        chosen, deviances = report[f"kmer{k}"]["chosen"], report[f"kmer{k}"]["validation_deviance"]
        assert set(deviances) == {"0", "1", "3", "10", "30", "100", "300", "1000"}
        assert deviances[f"{chosen:g}"] == min(deviances.values())
        assert demo_results[f"kmer{k}"]["prior_strength"] == chosen


def test_bootstrap_intervals_of_model_minus_each_method(demo_results):
    differences = demo_results["model"]["bootstrap_differences"]
    assert set(differences) == {"kmer3", "kmer5", "kmer7", "kmer3_pwm", "oracle", "kmer3_real"}
    for other, metrics in differences.items():
        names = {"per_base_auprc", "per_base_auroc"} | (
            {"binomial_deviance"} if other != "kmer3_real" else set()
        )
        assert set(metrics) == names
        for summary in metrics.values():
            assert summary["ci95_low"] <= summary["mean"] <= summary["ci95_high"]
            assert summary["replicates"] == 50
        estimate = metrics["per_base_auprc"]["estimate"]
        assert estimate == pytest.approx(
            demo_results["model"]["per_base_auprc"] - demo_results[other]["per_base_auprc"]
        )
    assert demo_results["evaluation"]["bootstrap"]["blocks"] > 50
    assert demo_results["oracle"]["bootstrap_differences"] is None


def test_regional_windows_without_contiguous_sequence_are_none(demo_results):
    # 200-bp records: no 10-kb window is fully covered.
    assert demo_results["evaluation"]["regional_windows_fully_covered"] == {"10kb": 0, "100kb": 0, "1Mb": 0}
    for method in RATE_METHODS:
        assert demo_results[method]["regional_correlation_10kb"] is None


def test_the_calibration_plot_is_written(demo_results, demo_plot):
    assert demo_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in demo_plot.parent.iterdir()] == [demo_plot.name]


def test_a_missing_matplotlib_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SeqmodelInputError, match="calibration_plot needs matplotlib: pip install"):
        _check_plot_path(str(tmp_path / "c.png"))
    with pytest.raises(SeqmodelInputError, match="must be a .png file"):
        _check_plot_path(str(tmp_path / "c.pdf"))


def test_regional_correlation_on_fully_covered_windows():
    # chr1: bases 0-2500 held out (windows of 1000: two full, one partial); chr2: 1000-3000.
    chroms = np.concatenate([np.zeros(2500, int), np.ones(2000, int)])
    positions = np.concatenate([np.arange(2500), np.arange(1000, 3000)])
    ids = full_window_ids((chroms, positions), 1000)
    assert len(np.unique(ids[ids >= 0])) == 4 and (ids[2000:2500] == -1).all()
    expected = np.repeat([1.0, 2.0, 9.0, 3.0, 4.0], [1000, 1000, 500, 1000, 1000]) / 1000
    observed = 7 * expected
    observed[2000:2500] = 0.0  # the partial window, left out, would break the line
    correlation, windows = window_correlation(ids, observed, expected)
    assert windows == 4 and correlation == pytest.approx(1.0)
    # A window where the prediction is missing at some base is left out.
    expected[10] = np.nan
    assert window_correlation(ids, observed, expected)[1] == 3


def test_observations_expect_n_p_carriers_and_score_the_binomial_deviance():
    obs = Observations(np.array([3.0, 0.0, 40.0]), genomes=100)
    rate = np.array([0.01, 0.001, 0.05])
    np.testing.assert_allclose(obs.expected(rate), 100 * rate)
    assert obs.mutated.tolist() == [True, False, True]
    where = np.array([True, False, True])
    expected = binomial_deviance(np.array([3, 40]), 100, rate[where])
    np.testing.assert_allclose(obs.deviance(rate, where), expected)


def test_the_split_from_headers_is_the_one_training_used(tiny_checkpoint, tmp_path, caplog):
    out = tmp_path / "prepared"
    prepare(["--sequences", str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"), "--out", str(out)])
    regions = out / "regions.fa.gz"
    cfg = config(f"ckpt_path={tiny_checkpoint}", f"data.fasta={regions}", "data.split_from_headers=true")
    splits = load_splits(cfg)
    header = {r.id: r.fields["split"] for r in load_fasta(regions)}
    for name, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.held_out)):
        assert dataset.ids == [i for i, split in header.items() if split == name]
    # The test split is the prepared test file; without the flag the seeded permutation is used.
    assert splits.held_out.ids == [r.id for r in load_fasta(out / "test.fa.gz")]
    permuted = load_splits(config(f"ckpt_path={tiny_checkpoint}", f"data.fasta={regions}"))
    assert permuted.val.ids != splits.val.ids
    with caplog.at_level(logging.WARNING):
        results = evaluate(
            config(
                f"ckpt_path={tiny_checkpoint}",
                f"data.fasta={regions}",
                "data.split_from_headers=true",
                "baselines.kmer_sizes=[3]",
                "++metrics.bootstrap_replicates=0",
            )
        )
    assert results["evaluation"]["split"] == "split= headers"
    assert results["evaluation"]["validation_records"] == len(splits.val)
    assert "kmer3_pwm left out" not in caplog.text  # no motif asked for, so nothing to warn about


def test_held_out_records_overlapping_training_records_are_an_error(tiny_checkpoint):
    cfg = config(f"ckpt_path={tiny_checkpoint}", f"held_out={DEMO_DATA_DIR / 'ctcf_demo.fa.gz'}")
    overlap = "held-out record chr1:5574687-5574887 overlaps training record"
    with pytest.raises(SeqmodelInputError, match=overlap):
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
        (
            [
                "baselines.pwm_motifs=MOTIFS",
                "baselines.pwm_motif_id=MA0139.1",
                "++baselines.pwm_hit_threshold=hi",
            ],
            "error: baselines.pwm_hit_threshold: 'hi' is not a log2-odds score or a percentage",
        ),
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
