import gzip
from pathlib import Path

import numpy as np
import pytest

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet, signatures
from seqmodel.io.fasta import FastaRecord, load_fasta
from seqmodel.io.motifs import read_motifs, select_motif
from seqmodel.simulate import (
    Hotspot,
    check_mix,
    class_alt_rates,
    context_classes,
    mutation_spectrum,
    record_layout,
    regional_factor,
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


def genome_records(seed: int, chrom: str, starts: list[int], length: int) -> list[FastaRecord]:
    """Records named `chrom:start-end` at `starts` (random sequence)."""
    rng = np.random.default_rng(seed)
    return [
        FastaRecord(f"{chrom}:{start}-{start + length}", "", rng.integers(0, 4, length).astype(np.uint8), i)
        for i, start in enumerate(starts)
    ]


def test_the_regional_factor_has_the_requested_cv_over_windows_of_its_scale():
    # 2 Gb of genome (20 chromosomes of 100 Mb) seen every 2 kb: 2,000 windows of 1 Mb.
    for cv in (0.27, 0.6):
        means = []
        for index in range(20):
            factor = regional_factor(f"chr{index}", np.arange(0, 100_000_000, 2_000), cv, 1e6, seed=3)
            means.append(factor.reshape(-1, 500).mean(axis=1))
        means = np.concatenate(means)
        assert means.std() / means.mean() == pytest.approx(cv, rel=0.1)
        assert means.mean() == pytest.approx(1.0, abs=0.03)
    # Squared-exponential correlation of the log factor: exp(-1/2) at one length scale, ~0 at five.
    positions = np.arange(0, 50_000_000, 10_000)
    logs = np.log(np.stack([regional_factor(f"chr{i}", positions, 0.5, 1e6, seed=0) for i in range(20)]))

    def lag_correlation(steps: int) -> float:
        return float(np.corrcoef(logs[:, :-steps].ravel(), logs[:, steps:].ravel())[0, 1])

    assert lag_correlation(1) > 0.99
    assert lag_correlation(100) == pytest.approx(np.exp(-0.5), abs=0.08)
    assert abs(lag_correlation(500)) < 0.08


def test_the_regional_factor_depends_only_on_seed_chromosome_and_position():
    positions = np.arange(0, 3_000_000, 1_000)
    near = regional_factor("chr1", positions, 0.3, 1e6, seed=1)
    np.testing.assert_array_equal(
        near, regional_factor("chr1", np.arange(0, 40_000_000, 1_000), 0.3, 1e6, seed=1)[: len(positions)]
    )
    assert not np.array_equal(near, regional_factor("chr2", positions, 0.3, 1e6, seed=1))
    assert not np.array_equal(near, regional_factor("chr1", positions, 0.3, 1e6, seed=2))
    np.testing.assert_array_equal(regional_factor("chr1", positions, 0.0, 1e6, seed=1), 1.0)


def test_records_take_the_regional_factor_at_their_genome_position(table):
    records = genome_records(5, "chr3", [2_000_000, 2_002_000, 9_000_000], 2_000)
    plain = simulate(records, table.mix(MIX), mean_rate=1e-3, genomes=50, seed=4)
    regional = simulate(
        records, table.mix(MIX), mean_rate=1e-3, genomes=50, seed=4, regional_cv=0.5, regional_scale=1e6
    )
    ratios = [r / p for r, p in zip(regional.rates, plain.rates, strict=True)]
    expected = [
        regional_factor("chr3", int(r.id.split(":")[1].split("-")[0]) + np.arange(len(r)), 0.5, 1e6, seed=4)
        for r in records
    ]
    # The factor times one constant (the rates are scaled back to the mean rate).
    constant = ratios[0][0] / expected[0][0]
    for ratio, factor in zip(ratios, expected, strict=True):
        np.testing.assert_allclose(ratio, constant * factor, rtol=1e-9)
    # Neighbouring records continue one smooth field; a far one sits elsewhere on it.
    assert ratios[1][0] == pytest.approx(ratios[0][-1], rel=1e-3)
    valid = np.concatenate([r.tokens < alphabet.N for r in records])
    assert np.concatenate(regional.rates)[valid].mean() == pytest.approx(1e-3)


def test_the_regional_factor_is_reproducible_and_off_by_default(table):
    records = genome_records(6, "chr1", [0, 500_000, 4_000_000], 3_000)
    spectrum = table.mix(MIX)

    def run(**kwargs):
        return simulate(records, spectrum, mean_rate=1e-3, genomes=30, **kwargs)

    first, again = run(seed=1, regional_cv=0.4), run(seed=1, regional_cv=0.4)
    for a, b in zip(first.rates, again.rates, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.mutations.carriers, again.mutations.carriers)
    # A new seed moves the field; a fixed regional seed keeps the rates while the draws change.
    moved = run(seed=2, regional_cv=0.4)
    assert not np.array_equal(moved.rates[0], first.rates[0])
    kept = run(seed=2, regional_cv=0.4, regional_seed=1)
    np.testing.assert_array_equal(kept.rates[0], first.rates[0])
    # regional_cv=0 is the simulation without a regional factor, bit for bit.
    off, default = run(seed=1, regional_cv=0.0), run(seed=1)
    for a, b in zip(off.rates, default.rates, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(off.mutations.offset, default.mutations.offset)


def test_cli_regional_factor_and_a_motif_factor_other_than_20(fasta, tmp_path, capsys):
    args = cli_args(fasta, tmp_path / "base")
    args[args.index("--motif-factor") + 1] = "2"
    main(args)
    main([*cli_args(fasta, tmp_path / "regional"), "--regional-cv", "0.3", "--regional-scale", "1e5"])
    main([*cli_args(fasta, tmp_path / "off"), "--regional-cv", "0"])
    rates = {
        name: [
            float(line.split("\t")[3]) for line in (tmp_path / name / "r.bedgraph").read_text().splitlines()
        ]
        for name in ("base", "regional", "off")
    }
    assert rates["regional"] != rates["off"]
    # Without --regional-cv (or with 0) the outputs are those of a run without the flag.
    main(cli_args(fasta, tmp_path / "plain"))
    for name in ("r.bedgraph", "m.vcf.gz"):
        assert (tmp_path / "off" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    header, _ = read_vcf(tmp_path / "regional" / "m.vcf.gz")
    assert "regional_cv=0.3 regional_scale=100000 regional_seed=0" in header[1]

    # The planted CTCF site (chr5:1100-1119) has 2x the rate with --motif-factor 2, 5x with 5.
    def chr5(name: str) -> np.ndarray:
        values = np.full(300, np.nan)
        for line in (tmp_path / name / "r.bedgraph").read_text().splitlines():
            chrom, start, end, value = line.split("\t")
            if chrom == "chr5" and int(start) < 1300:
                values[int(start) - 1000 : int(end) - 1000] = float(value)
        return values

    two, five = chr5("base"), chr5("plain")
    np.testing.assert_allclose(two[100:119] / five[100:119], 2 / 5, rtol=1e-4)
    np.testing.assert_allclose(two[:100], five[:100], rtol=1e-4)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*cli_args(fasta, tmp_path / "bad"), "--regional-cv", "-1"])
    err = capsys.readouterr().err.strip()
    assert err == "error: --regional-cv: -1.0 must be >= 0"
