"""seqmodel-predict on multi-record FASTA files, through the real entry point."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqmodel.data import alphabet
from seqmodel.data.fasta import load_fasta
from seqmodel.models.checkpoint import load_trained_model
from seqmodel.models.predictor import RecordPredictor
from seqmodel.predict import sequences_path


def run_predict(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "seqmodel.predict",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        *overrides,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def read_bedgraph(path: Path) -> dict[str, dict[int, float]]:
    values: dict[str, dict[int, float]] = {}
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        for line in handle:
            chrom, start, end, value = line.split("\t")
            for position in range(int(start), int(end)):
                assert position not in values.setdefault(chrom, {}), f"{chrom}:{position} twice"
                values[chrom][position] = float(value)
    return values


@pytest.mark.parametrize("suffix", [".bedgraph", ".bedgraph.gz"])
def test_every_valid_base_of_every_record_is_predicted_once(tmp_path, small_fasta, tiny_checkpoint, suffix):
    # Window 200: records of 17-177 bases are shorter; add one 1000-base record that is longer.
    fasta = tmp_path / "multi.fa"
    rng = np.random.default_rng(1)
    fasta.write_text(small_fasta.read_text() + ">big\n" + "".join(rng.choice(list("ACGT"), 1000)) + "\n")
    output = tmp_path / f"risk{suffix}"
    result = run_predict(tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    values = read_bedgraph(output)
    for record in load_fasta(fasta):
        valid = set(np.flatnonzero(record.tokens < alphabet.N).tolist())
        assert set(values[record.id]) == valid, record.id
        assert all(0.0 <= v <= 1.0 for v in values[record.id].values())
    table = sequences_path(output).read_text().splitlines()
    assert table[0] == "id\tlength\tp_0\tp_1"
    rows = [line.split("\t") for line in table[1:]]
    assert [(r[0], int(r[1])) for r in rows] == [(r.id, len(r)) for r in load_fasta(fasta)]
    for row in rows:
        assert abs(float(row[2]) + float(row[3]) - 1.0) < 1e-4


def test_reverse_complement_record_gives_the_flipped_track(tiny_checkpoint):
    predictor = RecordPredictor(load_trained_model(tiny_checkpoint), rc_average=True)
    tokens = alphabet.encode("".join(np.random.default_rng(2).choice(list("ACGT"), 150)))
    forward, forward_classes = predictor.predict_record(tokens)
    reverse, reverse_classes = predictor.predict_record(alphabet.reverse_complement(tokens))
    np.testing.assert_allclose(reverse[::-1], forward, atol=1e-6)
    np.testing.assert_allclose(reverse_classes, forward_classes, atol=1e-6)


def test_missing_checkpoint_is_one_line_and_no_output(tmp_path, small_fasta):
    output = tmp_path / "risk.bedgraph"
    result = run_predict(
        tmp_path, f"ckpt_path={tmp_path / 'none.ckpt'}", f"input={small_fasta}", f"output={output}"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.ckpt'}: checkpoint not found"]
    assert not output.exists()


def test_bad_record_leaves_no_output(tmp_path, tiny_checkpoint):
    fasta = tmp_path / "bad.fa"
    fasta.write_text(">ok\nACGTACGT\n>bad\nACGT!!\n")
    output = tmp_path / "risk.bedgraph"
    result = run_predict(tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={output}")
    assert result.returncode == 2
    assert "bad.fa:record 2 (bad): character '!'" in result.stderr
    assert not output.exists() and not sequences_path(output).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".risk")] == []
