"""seqmodel-predict on multi-record FASTA files, through the real entry point."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqmodel.io import alphabet
from seqmodel.io.fasta import load_fasta
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


def test_interior_predictions_do_not_depend_on_where_tiles_fall(tiny_checkpoint):
    predictor = RecordPredictor(load_trained_model(tiny_checkpoint), overlap=100)
    tokens = np.random.default_rng(3).integers(0, 4, 3000).astype(np.uint8)
    whole, _ = predictor.predict_record(tokens)
    for shift in (1, 37, 99):
        shifted, _ = predictor.predict_record(tokens[shift:])
        interior = slice(300, -300)
        np.testing.assert_allclose(shifted[interior], whole[shift:][interior], atol=1e-5, rtol=0)


def test_long_record_reverse_complement_gives_the_flipped_track(tiny_checkpoint):
    predictor = RecordPredictor(load_trained_model(tiny_checkpoint), overlap=100)
    tokens = np.random.default_rng(4).integers(0, 4, 1500).astype(np.uint8)
    forward, _ = predictor.predict_record(tokens)
    reverse, _ = predictor.predict_record(alphabet.reverse_complement(tokens))
    np.testing.assert_allclose(reverse[::-1][150:-150], forward[150:-150], atol=1e-5, rtol=0)


def read_output(path: Path, record_ids: list[str]) -> dict[str, np.ndarray]:
    """Per-base arrays (NaN where the output has no value) from any supported output."""
    if path.suffix == ".npz":
        with np.load(path) as data:
            return {rid: data[rid] for rid in record_ids}
    if path.suffix == ".bw":
        import pyBigWig

        bigwig = pyBigWig.open(str(path))
        try:
            return {
                rid: np.array(bigwig.values(rid, 0, bigwig.chroms(rid)), dtype=np.float32)
                for rid in record_ids
            }
        finally:
            bigwig.close()
    values = read_bedgraph(path) if path.suffix != ".tsv" else read_tsv(path)
    out = {}
    for rid in record_ids:
        length = max(values[rid]) + 1
        out[rid] = np.full(length, np.nan, dtype=np.float32)
        for position, value in values[rid].items():
            out[rid][position] = value
    return out


def read_tsv(path: Path) -> dict[str, dict[int, float]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "chrom\tstart\tend\trisk"
    values: dict[str, dict[int, float]] = {}
    for line in lines[1:]:
        chrom, start, end, value = line.split("\t")
        assert int(end) == int(start) + 1
        values.setdefault(chrom, {})[int(start)] = float(value)
    return values


@pytest.mark.parametrize("suffix", [".tsv", ".npz", ".bw"])
def test_every_output_format_holds_the_same_values(tmp_path, tiny_checkpoint, suffix):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGTACGTTTGACNNNNACGTAGGA\n>b\n" + "ACGTTGCA" * 60 + "N\n")
    reference = tmp_path / "ref.bedgraph"
    assert (
        run_predict(
            tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={reference}"
        ).returncode
        == 0
    )
    output = tmp_path / f"risk{suffix}"
    result = run_predict(tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    expected = read_output(reference, ["a", "b"])
    got = read_output(output, ["a", "b"])
    for rid, length, n_positions in (("a", 25, slice(13, 17)), ("b", 481, slice(480, 481))):
        values = got[rid]
        if suffix in (".npz", ".bw"):
            assert len(values) == length and np.isnan(values[n_positions]).all()
        np.testing.assert_allclose(values[: len(expected[rid])], expected[rid], atol=1e-5, equal_nan=True)
    assert sequences_path(output).read_text() == sequences_path(reference).read_text()


def test_regions_predict_only_those_intervals(tmp_path, tiny_checkpoint):
    rng = np.random.default_rng(5)
    sequence = "".join(rng.choice(list("ACGT"), 2000))
    fasta = tmp_path / "chr.fa"
    fasta.write_text(f">chrT\n{sequence}\n>other\nACGTACGT\n")
    bed = tmp_path / "regions.bed"
    bed.write_text("chrT\t1500\t1600\nchrT\t100\t130\n")
    output = tmp_path / "risk.bedgraph"
    result = run_predict(
        tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={output}", f"regions={bed}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    values = read_bedgraph(output)
    assert set(values) == {"chrT"} and sorted(values["chrT"]) == list(range(100, 130)) + list(
        range(1500, 1600)
    )
    whole, _ = RecordPredictor(load_trained_model(tiny_checkpoint)).predict_record(alphabet.encode(sequence))
    got = np.array([values["chrT"][p] for p in range(1500, 1600)])
    np.testing.assert_allclose(got, whole[1500:1600], atol=1e-4)
    table = sequences_path(output).read_text().splitlines()
    assert [row.split("\t")[:2] for row in table[1:]] == [["chrT:100-130", "30"], ["chrT:1500-1600", "100"]]


def test_region_past_the_record_end_is_a_clean_error(tmp_path, tiny_checkpoint):
    fasta = tmp_path / "chr.fa"
    fasta.write_text(">chrT\nACGTACGTAC\n")
    bed = tmp_path / "regions.bed"
    bed.write_text("chrT\t2\t5\nchrT\t8\t50\n")
    output = tmp_path / "risk.bw"
    result = run_predict(
        tmp_path, f"ckpt_path={tiny_checkpoint}", f"input={fasta}", f"output={output}", f"regions={bed}"
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: {bed}:line 2: region end 50 is past the end of chrT (10)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chr.fa", "hydra", "regions.bed"]


def test_chunked_records_regroup_a_chunk_stream(small_fasta):
    from seqmodel.io.fasta import read_fasta_chunks
    from seqmodel.predict import chunked_records

    grouped = [
        (rid, np.concatenate(list(chunks)))
        for rid, chunks in chunked_records(read_fasta_chunks(small_fasta, chunk_bytes=16))
    ]
    assert [(rid, tokens.tolist()) for rid, tokens in grouped] == [
        (r.id, r.tokens.tolist()) for r in load_fasta(small_fasta)
    ]


@pytest.mark.slow
def test_two_ranks_split_the_work_and_merge_identical_outputs(tmp_path, tiny_checkpoint):
    fasta = tmp_path / "multi.fa"
    rng = np.random.default_rng(6)
    fasta.write_text(
        "".join(
            f">r{i}\n{''.join(rng.choice(list('ACGTN'), n))}\n"
            for i, n in enumerate([50, 900, 1700, 20, 333])
        )
    )
    outputs = {}
    for devices in (1, 2):
        output = tmp_path / f"risk{devices}.bedgraph"
        result = run_predict(
            tmp_path,
            f"ckpt_path={tiny_checkpoint}",
            f"input={fasta}",
            f"output={output}",
            "predict.device=cpu",
            f"predict.devices={devices}",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[devices] = (output.read_text(), sequences_path(output).read_text())
    assert outputs[2] == outputs[1]
    assert not list(tmp_path.glob(".*ranks"))


def test_sequence_window_table_covers_each_record_in_windows(tmp_path, tiny_checkpoint):
    from seqmodel.predict import windows_path

    fasta = tmp_path / "in.fa"
    rng = np.random.default_rng(7)
    fasta.write_text(f">a\n{''.join(rng.choice(list('ACGT'), 1234))}\n>b\nACGTTGCA\n")
    output = tmp_path / "risk.bedgraph"
    result = run_predict(
        tmp_path,
        f"ckpt_path={tiny_checkpoint}",
        f"input={fasta}",
        f"output={output}",
        "predict.sequence_window=500",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in windows_path(output).read_text().splitlines()]
    assert rows[0] == ["id", "start", "end", "p_0", "p_1"]
    assert [tuple(r[:3]) for r in rows[1:]] == [
        ("a", "0", "500"),
        ("a", "500", "1000"),
        ("a", "1000", "1234"),
        ("b", "0", "8"),
    ]
    for row in rows[1:]:
        assert abs(float(row[3]) + float(row[4]) - 1) < 1e-4
    # One window holding a whole short record equals the record's own row.
    table = {
        line.split("\t")[0]: line.split("\t")[2:]
        for line in sequences_path(output).read_text().splitlines()[1:]
    }
    assert rows[-1][3:] == table["b"]
