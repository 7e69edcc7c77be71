"""Bad input through the real command-line entry points: one line naming the file and where,
a non-zero exit, no traceback and nothing at the output path.

The entry points run in-process (the same Hydra apps as the console scripts) to keep the
table fast; `test_predict.py` and `test_train.py` run a few of them as real subprocesses.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import sys

import numpy as np
import pytest

from seqmodel import predict, train


def run_inprocess(main, argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of a console-script main called with `argv`."""
    old_argv, err = sys.argv, io.StringIO()
    sys.argv = ["seqmodel", *argv]
    try:
        with contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = old_argv
    return code, err.getvalue()


def predict_argv(ckpt, fasta, output, run_dir) -> list[str]:
    return [f"ckpt_path={ckpt}", f"input={fasta}", f"output={output}", f"hydra.run.dir={run_dir}"]


RANDOM_DNA = bytes(np.random.default_rng(0).choice(list(b"ACGT"), 20_000).astype(np.uint8))
FASTA_CASES = {
    "empty.fa": (b"", "empty.fa: no FASTA records"),
    "no_header.fa": (b"ACGT\n", "no_header.fa:line 1: not FASTA: expected a '>' header line"),
    "no_sequence.fa": (b">a\n>b\nACGT\n", "no_sequence.fa:record 1 (a): header with no sequence"),
    "outside_iupac.fa": (
        b">a\nACGT\n>b\nACGU\n",
        "outside_iupac.fa:record 2 (b): character 'U' at position 4",
    ),
    "duplicate.fa": (b">a\nAC\n>a\nGT\n", "duplicate.fa:record 2 (a): duplicate record id 'a'"),
    "truncated.fa.gz": (
        gzip.compress(b">a\n" + RANDOM_DNA)[:3000],
        "truncated.fa.gz: corrupt or truncated gzip",
    ),
    "binary.fa": (bytes(range(256)) * 8, "binary.fa"),
}


@pytest.mark.parametrize("name", list(FASTA_CASES))
def test_bad_fasta_through_predict(tmp_path, tiny_checkpoint, name):
    content, expected = FASTA_CASES[name]
    fasta = tmp_path / name
    fasta.write_bytes(content)
    output = tmp_path / "out" / "risk.bedgraph"
    output.parent.mkdir()
    code, stderr = run_inprocess(
        predict.main,
        predict_argv(tiny_checkpoint, fasta, output, tmp_path / "h"),
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], stderr
    assert str(fasta) in lines[0]
    assert list(output.parent.iterdir()) == []


def test_directory_as_input(tmp_path, tiny_checkpoint):
    code, stderr = run_inprocess(
        predict.main,
        [
            f"ckpt_path={tiny_checkpoint}",
            f"input={tmp_path}",
            f"output={tmp_path / 'o.bedgraph'}",
            "hydra.run.dir=/tmp/h",
        ],
    )
    assert code == 2 and stderr.strip() == f"error: {tmp_path}: input file is a directory, expected a file"


@pytest.mark.parametrize(
    "content",
    [b">a\r\nACGT\r\nAC\r\n", b">a\n" + b"ACGT" * 50_000 + b"\n"],
    ids=["windows_line_endings", "very_long_single_line"],
)
def test_accepted_fasta_variants(tmp_path, tiny_checkpoint, content):
    fasta = tmp_path / "ok.fa"
    fasta.write_bytes(content)
    output = tmp_path / "risk.bedgraph"
    code, stderr = run_inprocess(
        predict.main,
        predict_argv(tiny_checkpoint, fasta, output, tmp_path / "h"),
    )
    assert code == 0, stderr
    assert output.stat().st_size > 0


TRAIN_FASTA = b"".join(
    [
        b">r1 label=1\nACGTACGTACGTACGTACGT\n",
        b">r2 label=0\nGGGGCCCCAAAATTTTACGT\n",
        b">r3 label=0\nACGTTTTTACGTAAAACCCC\n",
    ]
)
VCF_HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
MUTATION_CASES = {
    "ref_mismatch.vcf": (
        VCF_HEADER + b"r1\t2\t.\tA\tT\t.\tPASS\t.\n",
        "ref_mismatch.vcf:line 3: REF A does not match",
    ),
    "past_end.vcf": (
        VCF_HEADER + b"r1\t21\t.\tA\tT\t.\tPASS\t.\n",
        "past_end.vcf:line 3: position 21 is past the end of r1 (length 20)",
    ),
    "unknown_chrom.vcf": (
        VCF_HEADER + b"chrQ\t5\t.\tA\tT\t.\tPASS\t.\n",
        "unknown_chrom.vcf: no site falls on any FASTA record",
    ),
    "malformed.vcf": (
        VCF_HEADER + b"r1\t5\t.\n",
        "malformed.vcf:line 3: expected >= 8 tab-separated VCF columns",
    ),
    "zero_pos.vcf": (VCF_HEADER + b"r1\t0\t.\tA\tT\t.\t.\t.\n", "zero_pos.vcf:line 3: POS 0 must be >= 1"),
    "not_a_number.vcf": (
        VCF_HEADER + b"r1\tfive\t.\tA\tT\t.\t.\t.\n",
        "not_a_number.vcf:line 3: POS 'five' is not an integer",
    ),
    "no_header.vcf": (b"r1\t5\t.\tA\tT\t.\tPASS\t.\n", "no_header.vcf:line 1: not a VCF"),
    "latin1.vcf": (
        VCF_HEADER.replace(b"#CHROM", b"##source=caf\xe9\n#CHROM") + b"r1\t5\t.\tA\tT\t.\t.\t.\n",
        "latin1.vcf:line 2: not UTF-8 text (byte 0xe9",
    ),
    "truncated.vcf.gz": (
        gzip.compress(
            VCF_HEADER + b"".join(b"r1\t%d\t.\tA\tT\t.\t.\tN=%d\n" % (i % 20 + 1, i) for i in range(5000))
        )[:3000],
        "truncated.vcf.gz:line ",  # the line being read when the data ran out
    ),
    "negative.bed": (b"r1\t-1\t3\n", "negative.bed:line 1: need 0 <= start < end"),
    "empty_interval.bed": (b"r1\t4\t4\n", "empty_interval.bed:line 1: need 0 <= start < end"),
}


@pytest.mark.parametrize("name", list(MUTATION_CASES))
def test_bad_mutations_through_train(tmp_path, name):
    content, expected = MUTATION_CASES[name]
    fasta, mutations = tmp_path / "train.fa", tmp_path / name
    fasta.write_bytes(TRAIN_FASTA)
    mutations.write_bytes(content)
    code, stderr = run_inprocess(
        train.main,
        [
            f"data.fasta={fasta}",
            f"data.mutations={mutations}",
            "data.true_rate=null",
            "logger=none",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
    )
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "fasta, expected",
    [
        (b">r1 label=1\nACGT\n>r2\nACGT\n", "record 2 (r2): missing sequence label"),
        (b">r1 label=1\nACGT\n>r2 label=ctcf\nACGT\n", "record 1 (r1): mixed label types"),
        (b">chr label=1\n" + b"ACGT" * 100 + b"\n", "data.val_fraction: 1 record(s) are too few for val=0.1"),
    ],
    ids=["missing_label", "mixed_label_types", "one_record_cannot_be_split"],
)
def test_bad_labels_through_train(tmp_path, fasta, expected):
    path = tmp_path / "labels.fa"
    path.write_bytes(fasta)
    code, stderr = run_inprocess(
        train.main,
        [
            f"data.fasta={path}",
            "data.mutations=null",
            "data.true_rate=null",
            "logger=none",
            f"hydra.run.dir={tmp_path}",
        ],
    )
    assert code == 2 and expected in stderr.strip(), stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize(
    "main, argv, expected",
    [
        (train.main, ["model.trunk.hiden_size=3"], "Key 'hiden_size' not in 'TrunkConfig'"),
        (train.main, ["model.trunk.cell=rnn"], "model.trunk.cell: must be 'lstm' or 'gru', got 'rnn'"),
        (predict.main, ["ckpt_path=x.ckpt", "output=o.bedgraph"], "Missing mandatory value: input"),
        (predict.main, ["ckpt_path=x.ckpt", "input=x.fa", "output=o.txt"], "unsupported output type"),
    ],
    ids=["unknown_key", "bad_value", "missing_required_path", "unknown_output_type"],
)
def test_bad_config(tmp_path, main, argv, expected):
    code, stderr = run_inprocess(
        main,
        [*argv, "logger=none", f"hydra.run.dir={tmp_path}"]
        if main is train.main
        else [*argv, f"hydra.run.dir={tmp_path}"],
    )
    assert code != 0 and expected in stderr, stderr
    assert "Traceback" not in stderr


def test_bad_checkpoint_through_predict(tmp_path, small_fasta):
    ckpt = tmp_path / "cut.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    code, stderr = run_inprocess(
        predict.main,
        [
            f"ckpt_path={ckpt}",
            f"input={small_fasta}",
            f"output={tmp_path / 'o.bedgraph'}",
            f"hydra.run.dir={tmp_path}",
        ],
    )
    assert code == 2 and stderr.startswith(f"error: {ckpt}: unreadable or truncated checkpoint")
