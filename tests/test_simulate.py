import gzip
from pathlib import Path

import numpy as np
import pytest

from seqmodel.data import alphabet
from seqmodel.io import signatures
from seqmodel.io.fasta import FastaRecord, load_fasta
from seqmodel.io.motifs import read_motifs, select_motif
from seqmodel.errors import SeqmodelInputError
from seqmodel.simulate import (
    Hotspot,
    check_mix,
    class_alt_rates,
    context_classes,
    mutation_spectrum,
    record_layout,
    simulate,
    write_outputs,
)
from seqmodel.simulate_cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
COSMIC = DATA / "COSMIC_v3_SBS_GRCh37.tsv"
JASPAR = DATA / "jaspar2024_selected.jaspar"
MIX = {"SBS1": 0.1, "SBS2": 0.2, "SBS3": 0.3, "SBS5": 0.2, "SBS13": 0.2}
MIX_TEXT = ",".join(f"{name}={weight}" for name, weight in MIX.items())


@pytest.fixture(scope="module")
def table():
    return signatures.read_signatures(COSMIC)


@pytest.fixture(scope="module")
def ctcf():
    return select_motif(read_motifs(JASPAR), "MA0139.1", JASPAR).pwm()


def random_seq(rng: np.random.Generator, length: int) -> str:
    return alphabet.decode(rng.integers(0, 4, length))


def random_records(seed: int, count: int, length: int) -> list[FastaRecord]:
    rng = np.random.default_rng(seed)
    return [FastaRecord(f"s{i}", "", rng.integers(0, 4, length).astype(np.uint8), i) for i in range(count)]


def write_fasta(path: Path, records: dict[str, str]) -> Path:
    path.write_text("".join(f">{header}\n{seq}\n" for header, seq in records.items()))
    return path


@pytest.fixture
def fasta(tmp_path, ctcf) -> Path:
    """Genome-style and plain ids, an N run and a planted CTCF site at offset 100 of chr5."""
    rng = np.random.default_rng(0)
    site = alphabet.decode(ctcf.log_odds.argmax(axis=0))
    chr5 = random_seq(rng, 100) + site + random_seq(rng, 81) + "NNNNN" + random_seq(rng, 95)
    records = {
        "chr5:1000-1300 label=1": chr5,
        "plain label=0": random_seq(rng, 150),
        "chr2:500-700 label=0": random_seq(rng, 200),
        "chr5:2000-2200 label=0": random_seq(rng, 200),
    }
    return write_fasta(tmp_path / "in.fa", records)


def cli_args(fasta: Path, out: Path, seed: int = 0) -> list[str]:
    out.mkdir(exist_ok=True)
    return [
        "--fasta", str(fasta), "--signatures", str(COSMIC), "--mix", MIX_TEXT,
        "--mean-rate", "0.01", "--genomes", "20", "--seed", str(seed),
        "--motifs", str(JASPAR), "--motif-id", "MA0139.1", "--motif-threshold", "90%",
        "--motif-factor", "5",
        "--out-vcf", str(out / "m.vcf.gz"), "--out-rate", str(out / "r.bedgraph"),
        "--out-hits", str(out / "h.bed"),
    ]  # fmt: skip


def locate(records: list[FastaRecord], chrom: str, position: int) -> tuple[int, int]:
    """(record index, offset) of a 0-based genome position."""
    for index, (c, start) in enumerate(record_layout(records)):
        if c == chrom and start <= position < start + len(records[index]):
            return index, position - start
    raise AssertionError(f"{chrom}:{position} is in no record")


def read_vcf(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    return [x for x in lines if x.startswith("#")], [x.split("\t") for x in lines if x[0] != "#"]


def test_cli_is_deterministic_for_a_seed_and_seeds_differ(fasta, tmp_path, capsys):
    outputs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        main(cli_args(fasta, tmp_path / name, seed))
        outputs[name] = [(tmp_path / name / f).read_bytes() for f in ("m.vcf.gz", "r.bedgraph")]
    assert outputs["a"] == outputs["b"]
    assert outputs["a"][0] != outputs["c"][0]
    assert outputs["a"][1] == outputs["c"][1]  # the true rate does not depend on the seed
    assert "wrote" in capsys.readouterr().out


def test_vcf_uses_genome_coordinates_and_counts_carriers(fasta, tmp_path):
    main(cli_args(fasta, tmp_path / "out"))
    header, rows = read_vcf(tmp_path / "out" / "m.vcf.gz")
    assert header[0] == "##fileformat=VCFv4.2"
    assert "seed=0" in header[1] and "motif_id=MA0139.1" in header[1]
    contigs = [h for h in header if h.startswith("##contig")]
    assert contigs == ["##contig=<ID=chr2>", "##contig=<ID=chr5>", "##contig=<ID=plain,length=150>"]
    assert header[-1] == "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    records = load_fasta(fasta)
    order = {"chr2": 0, "chr5": 1, "plain": 2}
    keys = [(order[row[0]], int(row[1]), row[4]) for row in rows]
    assert keys == sorted(keys) and len(rows) > 20
    for chrom, pos, _, ref, alt, _, _, info in rows:
        index, offset = locate(records, chrom, int(pos) - 1)
        assert ref == alphabet.BASES[records[index].tokens[offset]]
        assert alt in "ACGT" and alt != ref
        ac, an = info.split(";")
        assert an == "AN=20" and 1 <= int(ac[3:]) <= 20


def test_bedgraph_holds_the_true_rate_of_every_non_n_base(fasta, tmp_path, table, ctcf):
    main(cli_args(fasta, tmp_path / "out"))
    records = load_fasta(fasta)
    expected = simulate(
        records, table.mix(MIX), mean_rate=0.01, genomes=20, seed=0,
        hotspot=Hotspot(ctcf, ctcf.threshold(0.9), 5.0),
    )  # fmt: skip
    seen = {record.id: np.full(len(record), np.nan) for record in records}
    previous = None
    for line in (tmp_path / "out" / "r.bedgraph").read_text().splitlines():
        chrom, start, end, value = line.split("\t")
        assert previous is None or (chrom, int(start)) > previous
        previous = (chrom, int(start))
        index, offset = locate(records, chrom, int(start))
        seen[records[index].id][offset : offset + int(end) - int(start)] = float(value)
    for index, record in enumerate(records):
        valid = record.tokens < alphabet.N
        assert np.isnan(seen[record.id][~valid]).all()
        np.testing.assert_allclose(seen[record.id][valid], expected.rates[index][valid], rtol=1e-5)


def test_rate_is_zero_at_n_and_positive_elsewhere(fasta, table):
    records = load_fasta(fasta)
    sim = simulate(records, table.mix(MIX), mean_rate=0.01, genomes=20, seed=0)
    n = records[0].tokens == alphabet.N
    assert n.sum() == 5
    assert (sim.rates[0][n] == 0).all() and (sim.rates[0][~n] > 0).all()
    assert not np.isin(sim.mutations.offset[sim.mutations.record == 0], np.flatnonzero(n)).any()


def test_motif_hits_raise_the_rate_by_the_factor(fasta, table, ctcf):
    records = load_fasta(fasta)
    spectrum = table.mix(MIX)
    plain = simulate(records, spectrum, mean_rate=0.01, genomes=20, seed=0)
    hotspot = Hotspot(ctcf, ctcf.threshold(0.9), 5.0)
    hot = simulate(records, spectrum, mean_rate=0.01, genomes=20, seed=0, hotspot=hotspot)
    assert np.flatnonzero(hot.in_hotspot[0]).tolist() == list(range(100, 119))
    for before, after, mask in zip(plain.rates, hot.rates, hot.in_hotspot, strict=True):
        np.testing.assert_allclose(after[mask], 5.0 * before[mask])
        np.testing.assert_array_equal(after[~mask], before[~mask])


def test_mean_rate_is_the_mean_over_non_n_bases_before_hotspots(fasta, table):
    records = load_fasta(fasta)
    sim = simulate(records, table.mix(MIX), mean_rate=0.003, genomes=20, seed=0)
    valid = np.concatenate([r.tokens < alphabet.N for r in records])
    assert np.concatenate(sim.rates)[valid].mean() == pytest.approx(0.003)


def test_a_base_without_a_neighbour_gets_the_opportunity_weighted_mean_rate(table):
    rng = np.random.default_rng(3)
    opportunity = rng.integers(1, 100, signatures.N_CONTEXTS).astype(float)
    rates = class_alt_rates(table.mix(MIX), opportunity)
    # The first base of "CA...": left unknown, base C, right A.
    pooled = rates[int(context_classes(alphabet.encode("CA"))[0])]
    full, weight = np.zeros(4), 0.0
    for left in range(4):
        tokens = np.array([left, alphabet.C, alphabet.A], dtype=np.uint8)
        o = opportunity[signatures.pyrimidine_contexts(tokens)[1]]
        full += o * rates[int(context_classes(tokens)[1])]
        weight += o
    np.testing.assert_allclose(pooled, full / weight)
    assert pooled[alphabet.C] == 0


def test_carriers_follow_the_rates(table):
    records = random_records(4, 4, 5000)
    sim = simulate(records, table.mix(MIX), mean_rate=0.002, genomes=50, seed=5)
    expected = 50 * sum(float(r.sum()) for r in sim.rates)
    assert abs(sim.mutations.carriers.sum() - expected) < 5 * np.sqrt(expected)
    assert (sim.mutations.alt != sim.mutations.ref).all()


def test_refit_of_the_simulated_spectrum_recovers_the_mix(table):
    records = random_records(6, 5, 20_000)
    sim = simulate(records, table.mix(MIX), mean_rate=1e-3, genomes=100, seed=0)
    spectrum = mutation_spectrum(sim)
    assert spectrum.sum() > 8000
    fit = signatures.fit_signatures(spectrum, table, tuple(MIX))
    recovered = np.array([fit.weights[name] for name in MIX])
    assert fit.cosine >= 0.99
    assert signatures.cosine(recovered, np.array(list(MIX.values()))) >= 0.99
    assert signatures.fit_signatures(spectrum, table).cosine >= 0.99


def test_mix_check_outside_hotspots_recovers_the_mix_the_hotspots_tilt(table, ctcf):
    records = random_records(8, 5, 20_000)
    site = ctcf.log_odds.argmax(axis=0).astype(np.uint8)
    for record in records:  # a CTCF site every 400 bases: about 5 % of the bases are hotspots
        for start in range(100, len(record) - 100, 400):
            record.tokens[start : start + ctcf.width] = site
    hotspot = Hotspot(ctcf, ctcf.threshold(0.9), 20.0)
    sim = simulate(records, table.mix(MIX), mean_rate=1e-3, genomes=100, seed=0, hotspot=hotspot)
    everything, outside = check_mix(sim, table, MIX), check_mix(sim, table, MIX, outside_hotspots=True)
    assert outside.mutations < everything.mutations
    assert outside.weights_cosine >= 0.99 and outside.spectrum_cosine >= 0.99
    assert everything.weights_cosine < outside.weights_cosine
    assert sum(outside.fit.weights.values()) == pytest.approx(1.0)


def test_validate_reports_the_refit_and_refuses_a_mix_it_cannot_recover(fasta, tmp_path, capsys):
    big = write_fasta(
        tmp_path / "big.fa", {f"s{i}": random_seq(np.random.default_rng(i), 20_000) for i in range(5)}
    )
    args = cli_args(big, tmp_path / "ok")
    args[args.index("--mean-rate") + 1], args[args.index("--genomes") + 1] = "1e-3", "100"
    main([*args, "--validate"])
    out = capsys.readouterr().out
    assert "NNLS refit of the spectrum (outside motif hits" in out and "cosine of weights 0.99" in out
    # 550 bases and 20 genomes carry too few mutations to recover a five-signature mix.
    with pytest.raises(SystemExit) as exit_info:
        main([*cli_args(fasta, tmp_path / "out"), "--validate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--validate: the refit recovers the mix with cosine" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_bgzf_outputs_of_many_blocks_read_back_whole(tmp_path):
    text = "".join(f"chr1\t{i}\t{i + 1}\t{i % 7}\n" for i in range(20_000))  # about 5 BGZF blocks
    write_outputs({tmp_path / "big.bedgraph.gz": text})
    assert gzip.decompress((tmp_path / "big.bedgraph.gz").read_bytes()).decode() == text


def test_overlapping_records_are_an_error_and_leave_no_output(tmp_path, capsys):
    rng = np.random.default_rng(7)
    records = {"chr1:100-200": random_seq(rng, 100), "chr1:150-250": random_seq(rng, 100)}
    fasta = write_fasta(tmp_path / "overlap.fa", records)
    with pytest.raises(SystemExit) as exit_info:
        main(cli_args(fasta, tmp_path / "out"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "overlap.fa:record 2 (chr1:150-250): overlaps record 1 (chr1:100-200)" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_id_interval_must_match_the_sequence_length(tmp_path):
    fasta = write_fasta(tmp_path / "len.fa", {"chr1:100-200": "ACGT" * 10})
    expected = "len.fa:record 1 .chr1:100-200.: the id spans 100 bp but the sequence has 40"
    with pytest.raises(SeqmodelInputError, match=expected):
        record_layout(load_fasta(fasta), fasta)


@pytest.mark.parametrize(
    "change, expected",
    [
        (("--mix", "SBS1=1,SBS999=1"), "error: --mix: unknown signature 'SBS999'"),
        (("--mean-rate", "0.5"), "error: --mean-rate: the highest per-base rate is"),
        (("--motif-id", "MA0000.1"), "jaspar2024_selected.jaspar: no motif with id 'MA0000.1'"),
        (("--motif-threshold", "high"), "error: --motif-threshold: 'high' is not"),
        (("--signatures", "missing.tsv"), "missing.tsv: signature table not found"),
        (("--out-rate", "no/such/dir/r.bedgraph"), "r.bedgraph: output directory does not exist"),
    ],
)
def test_bad_arguments_end_with_one_line_and_no_output(fasta, tmp_path, capsys, change, expected):
    args = cli_args(fasta, tmp_path / "out")
    args[args.index(change[0]) + 1] = change[1]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err
    assert list((tmp_path / "out").iterdir()) == []


def test_hits_bed_lists_the_planted_site(fasta, tmp_path):
    main(cli_args(fasta, tmp_path / "out"))
    lines = (tmp_path / "out" / "h.bed").read_text().splitlines()
    assert lines == ["chr5\t1100\t1119\tMA0139.1\t1000\t+"]
