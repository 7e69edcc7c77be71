"""seqmodel-score-variants on real files: a tiny random-weight checkpoint, an indexed BGZF genome and
a VCF with a multi-allelic site, a REF mismatch, an unknown chromosome and an indel; the scores
checked against the predictor and the network run by hand; the VCF output read back (and by
bcftools); the one-line errors."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio import bgzf
from hydra import compose, initialize_config_dir

from seqmodel.config import CONFIG_DIR
from seqmodel.errors import run_cli
from seqmodel.io import alphabet
from seqmodel.io.vcf import InfoField, VcfReader, write_vcf
from seqmodel.models.checkpoint import load_trained_model
from seqmodel.models.predictor import RecordPredictor
from seqmodel.score_variants import FLAGS, info_ids, score_variants, site_window

WINDOW = 40
SPAN = 6
MODEL = {
    "trunk": {"hidden_size": 4, "conv_channels": 4, "conv_kernel": 5, "conv_layers": 1, "num_layers": 1},
    "per_base_head": {"hidden": 4},
    "pooled_head": {"hidden": 4, "pooling": "attention"},
}
LINE = 60
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_untrained_checkpoint) -> Path:
    """A checkpoint of an untrained tiny model."""
    return save_untrained_checkpoint(
        tmp_path_factory.mktemp("model") / "tiny.ckpt", MODEL, WINDOW, ["bg", "peak"]
    )


@pytest.fixture(scope="module")
def chroms() -> dict[str, str]:
    """chr1: 150 bases, soft-masked in part, N at 120-123 (0-based); chr2: 25 bases (shorter than
    the model's window)."""
    rng = np.random.default_rng(1)
    chr1 = list(rng.choice(list("ACGT"), 150))
    chr1[30:60] = [base.lower() for base in chr1[30:60]]
    chr1[120:124] = "NNNN"
    return {"chr1": "".join(chr1), "chr2": "".join(rng.choice(list("ACGT"), 25))}


@pytest.fixture(scope="module")
def genome(tmp_path_factory, chroms) -> Path:
    """The chromosomes as BGZF with a samtools `.fai` (read through the index)."""
    text, fai = "", []
    for name, seq in chroms.items():
        header = f">{name} test\n"
        body = "".join(seq[i : i + LINE] + "\n" for i in range(0, len(seq), LINE))
        fai.append(f"{name}\t{len(seq)}\t{len(text) + len(header)}\t{LINE}\t{LINE + 1}\n")
        text += header + body
    path = tmp_path_factory.mktemp("genome") / "genome.fa.gz"
    writer = bgzf.BgzfWriter(path, "wb")
    for i in range(0, len(text), 100):  # several blocks: a chromosome starts inside one
        writer.write(text[i : i + 100].encode())
        writer.flush()
    writer.close()
    Path(f"{path}.fai").write_text("".join(fai))
    return path


def other(base: str) -> str:
    return "A" if base.upper() != "A" else "C"


def write_vcf_text(path: Path, rows: list[str]) -> Path:
    text = "##fileformat=VCFv4.2\n" + COLUMNS + "\n" + "".join(row + "\n" for row in rows)
    writer = bgzf.BgzfWriter(path, "wb")
    writer.write(text.encode())
    writer.close()
    return path


@pytest.fixture(scope="module")
def variants(tmp_path_factory, chroms) -> Path:
    """Unsorted: a multi-allelic site on the short chr2, a site near chr1's start spelt `1`, one
    in the middle (AC=3), one near the end (N in its window), a REF mismatch, a chromosome the
    genome lacks, an indel."""
    chr1, chr2 = chroms["chr1"].upper(), chroms["chr2"]
    alts2 = ",".join(base for base in "ACGT" if base != chr2[9])
    rows = [
        f"chr2\t10\tmulti\t{chr2[9]}\t{alts2}\t.\tPASS\t.",
        f"1\t3\t.\t{chr1[2]}\t{other(chr1[2])}\t.\t.\t.",
        f"chr1\t80\t.\t{chr1[79]}\t{other(chr1[79])}\t.\tPASS\tAC=3;AN=10",
        f"chr1\t148\t.\t{chr1[147]}\t{other(chr1[147])}\t.\t.\t.",
        f"chr1\t50\twrong\t{other(chr1[49])}\tG\t.\t.\t.",
        "chrUn\t10\t.\tA\tC\t.\t.\t.",
        f"chr1\t20\tindel\t{chr1[19]}T\t{chr1[19]}\t.\t.\t.",
    ]
    return write_vcf_text(tmp_path_factory.mktemp("vcf") / "variants.vcf.gz", rows)


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        # One REF mismatch in 7 sites is allowed, unless a test says otherwise.
        defaults = ["predict.device=cpu", f"score.window={SPAN}", "score.max_ref_mismatch=0.2"]
        return compose("score_variants", overrides=[*defaults, *overrides])


def run(checkpoint, genome, vcf, output, *overrides: str) -> Path:
    cfg = config(f"ckpt_path={checkpoint}", f"genome={genome}", f"vcf={vcf}", f"output={output}", *overrides)
    return score_variants(cfg)


def read_table(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """(the `##` lines, the column names, the rows)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        lines = handle.read().splitlines()
    comments = [line for line in lines if line.startswith("##")]
    body = [line.split("\t") for line in lines if not line.startswith("##")]
    return comments, body[0], body[1:]


def expected_sites(chroms) -> list[tuple[str, int, str, str]]:
    """(VCF chrom, 1-based pos, ref, alt) of the SNVs to score, in the VCF's order."""
    chr1, chr2 = chroms["chr1"].upper(), chroms["chr2"]
    alts2 = [base for base in "ACGT" if base != chr2[9]]
    return [
        *(("chr2", 10, chr2[9], alt) for alt in alts2),
        ("1", 3, chr1[2], other(chr1[2])),
        ("chr1", 80, chr1[79], other(chr1[79])),
        ("chr1", 148, chr1[147], other(chr1[147])),
    ]


def test_one_row_per_snv_in_the_vcf_order_and_a_summary(
    tmp_path, checkpoint, genome, variants, chroms, capsys, caplog
):
    output = tmp_path / "scores.tsv.gz"
    with caplog.at_level(logging.WARNING, logger="seqmodel.score_variants"):
        run(checkpoint, genome, variants, output)
    comments, columns, rows = read_table(output)
    assert columns == [
        "chrom", "pos", "ref", "alt", "risk", "delta_risk_window", "delta_logodds_bg", "delta_logodds_peak"
    ]  # fmt: skip
    assert [(r[0], int(r[1]), r[2], r[3]) for r in rows] == expected_sites(chroms)
    assert any("risk: predicted per-genome mutation probability of the site's base" in c for c in comments)
    values = np.array([[float(v) for v in row[4:]] for row in rows])
    assert np.isfinite(values).all() and (values[:, 0] > 0).all() and (values[:, 0] < 1).all()
    np.testing.assert_allclose(values[:, 2], -values[:, 3], rtol=1e-5)  # two classes: opposite log-odds
    assert len({row[4] for row in rows[:3]}) == 1  # the split site's ALT alleles share one REF
    assert output.read_bytes()[:4] == b"\x1f\x8b\x08\x04"  # BGZF
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.startswith("scored 6 of 8 SNVs in ")
    assert "1 REF mismatches (of 7 checked)" in summary
    assert "1 on chromosomes not in the genome (chrUn (1))" in summary
    assert "alleles the VCF reader skipped: 1 indel" in summary
    assert any("REF" in r.message and "chr1:50" in r.message for r in caplog.records)


def test_model_windows_are_centred_and_clipped_at_chromosome_ends():
    assert site_window(79, 150, WINDOW) == (59, 99)  # the site at window // 2
    assert site_window(2, 150, WINDOW) == (0, 40)
    assert site_window(147, 150, WINDOW) == (110, 150)
    assert site_window(9, 25, WINDOW) == (0, 25)  # the whole (short) chromosome


def by_hand(trained, tokens: np.ndarray, rc_average: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-base rates `(L,)` (NaN at N) as seqmodel-predict computes them, and the class log-odds
    from the network run on the padded window (both strands' probabilities averaged)."""
    rates, _ = RecordPredictor(trained, rc_average=rc_average).predict_record(tokens)
    n = len(tokens)
    padded = np.full(trained.window, alphabet.N, dtype=np.uint8)
    padded[:n] = tokens
    strands = [padded]
    if rc_average:
        reverse = padded.copy()
        reverse[:n] = alphabet.reverse_complement(tokens)
        strands.append(reverse)
    probabilities = []
    with torch.no_grad():
        for strand in strands:
            x = torch.from_numpy(strand.astype(np.int64))[None]
            _, logits = trained.network(x, x < alphabet.N, torch.tensor([n]))
            probabilities.append(torch.softmax(logits.double(), -1)[0].numpy())
    p = np.mean(probabilities, axis=0)
    return rates, np.log(p / (1 - p))


@pytest.mark.parametrize("rc_average", [True, False])
def test_risk_and_deltas_equal_the_model_run_by_hand(
    tmp_path, checkpoint, genome, variants, chroms, rc_average
):
    output = tmp_path / "scores.tsv"
    run(checkpoint, genome, variants, output, f"predict.rc_average={rc_average}")
    _, _, rows = read_table(output)
    trained = load_trained_model(checkpoint)
    for row in rows:
        name = "chr1" if row[0] == "1" else row[0]
        sequence = chroms[name]
        pos = int(row[1]) - 1
        start, end = site_window(pos, len(sequence), WINDOW)
        ref = alphabet.encode(sequence[start:end])
        alt = ref.copy()
        alt[pos - start] = alphabet.BASES.index(row[3])
        ref_rates, ref_logodds = by_hand(trained, ref, rc_average)
        alt_rates, alt_logodds = by_hand(trained, alt, rc_average)
        near = np.abs(np.arange(start, end) - pos) <= SPAN
        delta = np.nansum(alt_rates[near].astype(np.float64)) - np.nansum(ref_rates[near].astype(np.float64))
        risk, delta_risk, *delta_logodds = (float(v) for v in row[4:])
        np.testing.assert_allclose(risk, ref_rates[pos - start], rtol=1e-5, err_msg=str(row))
        # float32 networks: batch shapes move outputs by ~1e-7, which deltas do not cancel
        np.testing.assert_allclose(delta_risk, delta, rtol=1e-4, atol=1e-6, err_msg=str(row))
        np.testing.assert_allclose(delta_logodds, alt_logodds - ref_logodds, rtol=1e-4, atol=1e-6)
    site_148 = next(row for row in rows if row[1] == "148")
    assert np.isnan(by_hand(trained, alphabet.encode(chroms["chr1"][110:150]), rc_average)[0][10:14]).all()
    assert float(site_148[5]) != 0.0  # N at 120-123 left out, the rest of the window summed


def test_buffer_and_batch_sizes_do_not_change_the_scores(tmp_path, checkpoint, genome, variants):
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    run(checkpoint, genome, variants, first)
    run(checkpoint, genome, variants, second, "score.batch_size=1", "score.sort_buffer=2")
    a, b = read_table(first)[2], read_table(second)[2]
    assert [row[:4] for row in a] == [row[:4] for row in b]
    values = [np.array([row[4:] for row in rows], dtype=float) for rows in (a, b)]
    np.testing.assert_allclose(*values, rtol=1e-5, atol=1e-6)  # float32: batch shapes move ~1e-7


def test_vcf_output_carries_the_scores_as_info_fields(tmp_path, checkpoint, genome, variants, chroms):
    table, output = tmp_path / "scores.tsv", tmp_path / "scores.vcf.gz"
    run(checkpoint, genome, variants, table)
    run(checkpoint, genome, variants, output)
    _, _, rows = read_table(table)
    snvs = list(VcfReader(output))
    assert [(s.chrom, s.pos + 1, s.ref, s.alt) for s in snvs] == expected_sites(chroms)
    assert [s.carriers for s in snvs] == [1, 1, 1, 1, 3, 1]  # AC of the input
    with gzip.open(output, "rt") as handle:
        lines = handle.read().splitlines()
    headers = {
        line.split(",")[0].removeprefix("##INFO=<ID="): line for line in lines if line.startswith("##INFO")
    }
    assert set(headers) == {"AC", "SM_RISK", "SM_DRISK", "SM_DLO_bg", "SM_DLO_peak"}
    assert (
        "Number=A,Type=Float" in headers["SM_DRISK"]
        and "per-genome mutation probability" in headers["SM_RISK"]
    )
    assert "##contig=<ID=1,length=150>" in lines and "##contig=<ID=chr2,length=25>" in lines
    records = [line.split("\t") for line in lines if not line.startswith("#")]
    for record, row in zip(records, rows, strict=True):
        info = dict(item.split("=") for item in record[7].split(";"))
        assert [info["SM_RISK"], info["SM_DRISK"], info["SM_DLO_bg"], info["SM_DLO_peak"]] == row[4:]
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools is not on PATH: the VCF was read back with seqmodel's reader only")
    fields = "%CHROM\t%POS\t%REF\t%ALT\t%INFO/SM_RISK\t%INFO/SM_DLO_peak\n"
    query = subprocess.run(
        ["bcftools", "query", "-f", fields, str(output)], capture_output=True, text=True, check=True
    )
    assert [line.split("\t") for line in query.stdout.splitlines()] == [row[:5] + [row[7]] for row in rows]
    view = subprocess.run(["bcftools", "view", "-H", str(output)], capture_output=True, text=True, check=True)
    assert len(view.stdout.splitlines()) == len(rows)


def one_line_error(capsys, cfg) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: score_variants(cfg), FLAGS)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_too_many_ref_mismatches_stop_the_run_with_one_line(
    tmp_path, checkpoint, genome, variants, chroms, capsys
):
    output = tmp_path / "scores.tsv"
    common = [f"ckpt_path={checkpoint}", f"genome={genome}", f"vcf={variants}", f"output={output}"]
    line = one_line_error(capsys, config(*common, "score.max_ref_mismatch=0.1"))
    seen = chroms["chr1"][49].upper()
    assert line == (
        f"error: {variants}:line 7: 1 of 7 REF alleles differ from the genome, more than "
        f"score.max_ref_mismatch=0.1 (first: REF {other(seen)}, the genome has {seen} at chr1:50); "
        "wrong genome build or coordinates?"
    )
    assert not list(tmp_path.iterdir())  # no output, no temporary file


def test_the_entry_point_exits_2_with_one_line(tmp_path, checkpoint, genome, variants):
    output = tmp_path / "scores.vcf"
    command = [
        sys.executable, "-m", "seqmodel.score_variants", f"hydra.run.dir={tmp_path / 'hydra'}",
        f"ckpt_path={checkpoint}", f"genome={genome}", f"vcf={variants}", f"output={output}",
        "score.max_ref_mismatch=0", f"score.window={SPAN}", "predict.device=cpu",
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=environment
    )
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {variants}:line 7: 1 of 7 REF alleles differ from the genome")
    assert not output.exists()


def test_bad_settings_and_inputs_are_one_line_errors(tmp_path, checkpoint, genome, variants, capsys):
    output = tmp_path / "scores.tsv"
    common = [f"ckpt_path={checkpoint}", f"genome={genome}", f"vcf={variants}"]
    line = one_line_error(capsys, config(*common, f"output={output}", "score.window=50"))
    assert line == (
        "error: score.window: 50 bases each side of the site need a model window of at least 101 bases; "
        "this checkpoint's is 40"
    )
    line = one_line_error(capsys, config(*common, f"output={tmp_path / 'scores.bed'}"))
    assert line.startswith("error: output: use a .tsv, .tsv.gz, .vcf or .vcf.gz name")
    line = one_line_error(capsys, config(*common, f"output={output}", "score.max_ref_mismatch=2"))
    assert line.startswith("error: score.max_ref_mismatch: is a fraction")
    elsewhere = write_vcf_text(
        tmp_path / "elsewhere.vcf.gz", ["chrUn\t10\t.\tA\tC\t.\t.\t.", "3\t5\t.\tA\tG\t.\t.\t."]
    )
    line = one_line_error(capsys, config(*common[:2], f"vcf={elsewhere}", f"output={output}"))
    assert (
        line
        == f"error: {elsewhere}: none of its 2 SNVs is on a chromosome of {genome} (the VCF has: chrUn, 3)"
    )
    assert not output.exists()


def test_write_vcf_streams_rows_with_extra_info_in_the_given_order(tmp_path):
    path = tmp_path / "rows.vcf"
    info = [InfoField("X_SCORE", "A", "Float", 'A "quoted" word')]
    rows = [
        ("chr2", 5, "A", "G", 2, "X_SCORE=0.5"),
        ("chr1", 9, "C", "T"),
        ("chr2", 5, "A", "G", 1, "X_SCORE=0.5"),
    ]
    assert write_vcf(path, rows, {"chr1": 20, "chr2": 20}, "test", info=info, sort=False) == 3
    lines = path.read_text().splitlines()
    assert '##INFO=<ID=X_SCORE,Number=A,Type=Float,Description="A \\"quoted\\" word">' in lines
    assert [line for line in lines if not line.startswith("#")] == [
        "chr2\t6\t.\tA\tG\t.\tPASS\tAC=2;X_SCORE=0.5",
        "chr1\t10\t.\tC\tT\t.\tPASS\tAC=1",
        "chr2\t6\t.\tA\tG\t.\tPASS\tAC=1;X_SCORE=0.5",
    ]
    assert write_vcf(path, rows, ["chr1", "chr2"], "test", info=info) == 2  # sorted: repeats merged
    assert path.read_text().splitlines()[-1] == "chr2\t6\t.\tA\tG\t.\tPASS\tAC=3;X_SCORE=0.5"
    with pytest.raises(ValueError, match="not a VCF key"):
        write_vcf(path, rows, ["chr1", "chr2"], "test", info=[InfoField("1X", "1", "Float", "x")])
    assert info_ids(["bg", "CTCF peak", "CTCF-peak"]) == [
        "SM_DLO_bg",
        "SM_DLO_CTCF_peak_1",
        "SM_DLO_CTCF_peak_2",
    ]
