"""seqmodel-explain: contribution tracks, the npz for modisco, head=class, regions=, and its errors."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from seqmodel.config import CONFIG_DIR
from seqmodel.errors import SeqmodelInputError, run_cli
from seqmodel.explain import FLAGS, explain, scores_path
from seqmodel.io import alphabet
from seqmodel.io.attributions import modisco_paths
from seqmodel.io.fasta import load_fasta

WINDOW = 40
MODEL = {
    "trunk": {"hidden_size": 4, "conv_channels": 4, "conv_kernel": 5, "conv_layers": 1, "num_layers": 1},
    "per_base_head": {"hidden": 4},
    "pooled_head": {"hidden": 4, "pooling": "attention"},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_untrained_checkpoint) -> Path:
    """A checkpoint of an untrained tiny model."""
    return save_untrained_checkpoint(
        tmp_path_factory.mktemp("model") / "tiny.ckpt", MODEL, WINDOW, ["bg", "peak"]
    )


@pytest.fixture
def fasta(tmp_path: Path) -> Path:
    """Three records: shorter than the window, longer (two tiles) with N, and one to hold regions."""
    rng = np.random.default_rng(0)
    records = {
        "short": "".join(rng.choice(list("ACGT"), 15)),
        "long": "".join(rng.choice(list("ACGT"), 30)) + "NNN" + "".join(rng.choice(list("acgt"), 27)),
        "chr2": "".join(rng.choice(list("ACGT"), 90)),
    }
    path = tmp_path / "x.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records.items()))
    return path


def read_bedgraph(path: Path) -> dict[str, dict[int, float]]:
    """chrom -> position -> value; a position given twice fails."""
    opener = gzip.open if path.name.endswith(".gz") else open
    values: dict[str, dict[int, float]] = {}
    with opener(path, "rt") as handle:
        for line in handle:
            chrom, start, end, value = line.split("\t")
            for position in range(int(start), int(end)):
                assert position not in values.setdefault(chrom, {}), f"{chrom}:{position} twice"
                values[chrom][position] = float(value)
    return values


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("explain", overrides=["predict.device=cpu", "explain.batch_size=512", *overrides])


def test_bedgraph_has_one_value_per_valid_base_and_a_scores_table(tmp_path, checkpoint, fasta):
    output = tmp_path / "contrib.bedgraph"
    explain(config(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={output}"))
    values = read_bedgraph(output)
    records = load_fasta(fasta)
    for record in records:
        valid = set(np.flatnonzero(record.tokens < alphabet.N).tolist())
        assert set(values[record.id]) == valid, record.id
    table = [line.split("\t") for line in scores_path(output).read_text().splitlines()]
    assert table[0] == ["id", "length", "score", "baseline_score", "contribution_sum"]
    assert [(row[0], int(row[1])) for row in table[1:]] == [(r.id, len(r)) for r in records]
    assert all(row[3] == "NA" for row in table[1:])  # ISM has no baseline


@pytest.mark.parametrize("method", ["ism", "ig"])
def test_npz_holds_the_arrays_modisco_reads(tmp_path, checkpoint, fasta, method):
    if method == "ig":
        pytest.importorskip("captum")
    output = tmp_path / "contrib.npz"
    explain(
        config(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={output}", f"explain.method={method}")
    )
    records = load_fasta(fasta)
    with np.load(output) as archive:
        expected = {r.id for r in records}
        expected |= {f"hypothetical/{r.id}" for r in records} | {f"onehot/{r.id}" for r in records}
        assert set(archive.files) == expected
        for record in records:
            contribution = archive[record.id]
            hypothetical, onehot = archive[f"hypothetical/{record.id}"], archive[f"onehot/{record.id}"]
            assert contribution.shape == (len(record),) and contribution.dtype == np.float32
            assert hypothetical.shape == onehot.shape == (4, len(record))
            valid = record.tokens < alphabet.N
            np.testing.assert_array_equal(onehot[:, valid].argmax(0), record.tokens[valid])
            assert (onehot[:, ~valid] == 0).all() and np.isnan(contribution[~valid]).all()
            np.testing.assert_allclose((hypothetical * onehot).sum(0)[valid], contribution[valid], rtol=1e-6)
    longest = max(len(r) for r in records)
    sequences, attributions = (np.load(path) for path in modisco_paths(output))
    assert sequences["arr_0"].shape == attributions["arr_0"].shape == (len(records), 4, longest)
    assert sequences["ids"].tolist() == [r.id for r in records]
    with np.load(output) as archive:
        for i, record in enumerate(records):  # centred, zero padding around
            offset = int(sequences["offsets"][i])
            assert offset == (longest - len(record)) // 2
            row = sequences["arr_0"][i]
            np.testing.assert_array_equal(
                row[:, offset : offset + len(record)], archive[f"onehot/{record.id}"]
            )
            assert row[:, :offset].sum() == 0 and row[:, offset + len(record) :].sum() == 0
            np.testing.assert_array_equal(
                attributions["arr_0"][i][:, offset : offset + len(record)],
                archive[f"hypothetical/{record.id}"],
            )


def test_class_head_and_regions(tmp_path, checkpoint, fasta):
    regions = tmp_path / "regions.bed"
    regions.write_text("chr2\t10\t30\nchr2\t50\t85\n")
    output = tmp_path / "contrib.bedgraph.gz"
    explain(
        config(
            f"ckpt_path={checkpoint}",
            f"input={fasta}",
            f"output={output}",
            f"regions={regions}",
            "head=class",
            "explain.target=peak",
        )
    )
    values = read_bedgraph(output)
    assert set(values) == {"chr2"}
    assert set(values["chr2"]) == set(range(10, 30)) | set(range(50, 85))
    rows = scores_path(output).read_text().splitlines()[1:]
    assert [row.split("\t")[:2] for row in rows] == [["chr2:10-30", "20"], ["chr2:50-85", "35"]]


def test_unknown_class_and_too_long_records_are_refused(tmp_path, checkpoint, fasta):
    output = tmp_path / "contrib.bedgraph"
    common = [f"ckpt_path={checkpoint}", f"input={fasta}", f"output={output}"]
    with pytest.raises(SeqmodelInputError, match="the checkpoint's classes are bg, peak"):
        explain(config(*common, "head=class", "explain.target=enhancer"))
    with pytest.raises(
        SeqmodelInputError, match="more than explain.max_bases=50; explain parts of it with regions="
    ):
        explain(config(*common, "explain.max_bases=50"))
    assert not output.exists() and not scores_path(output).exists()


def run_explain(tmp_path: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "seqmodel.explain", f"hydra.run.dir={tmp_path / 'hydra'}", *overrides]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=environment
    )


def test_entry_point_writes_the_track_and_the_figure(tmp_path, checkpoint, fasta):
    pytest.importorskip("matplotlib")
    output, figure = tmp_path / "contrib.tsv", tmp_path / "first.png"
    result = run_explain(
        tmp_path, f"ckpt_path={checkpoint}", f"input={fasta}", f"output={output}", f"plot={figure}",
        "explain.window=[2,12]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert output.read_text().startswith("chrom\tstart\tend\t")


def test_missing_captum_is_one_line_and_exit_2(tmp_path, checkpoint, fasta, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "captum", None)  # `import captum...` now raises ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    output = tmp_path / "contrib.bedgraph"
    cfg = config(f"ckpt_path={checkpoint}", f"input={fasta}", f"output={output}", "explain.method=ig")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: explain(cfg), FLAGS)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: explain.method: ig needs captum: pip install 'seqmodel[interpret]'"
    ]
    assert not output.exists()
