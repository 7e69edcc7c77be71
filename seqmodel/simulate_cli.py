"""`seqmodel-simulate`: simulate mutations on real sequence from COSMIC signatures and motif
hotspots; write the mutations (VCF), the true per-base rate (bedGraph) and the motif hits (BED).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from seqmodel.baselines import pwm_threshold
from seqmodel.errors import ParameterError, SeqmodelInputError, argparse_flags, require_file, run_cli
from seqmodel.io.fasta import load_fasta
from seqmodel.io.motifs import (
    DEFAULT_PSEUDOCOUNT,
    PositionWeightMatrix,
    read_motifs,
    select_motif,
)
from seqmodel.io.signatures import parse_mix, read_signatures
from seqmodel.simulate import (
    Hotspot,
    MixCheck,
    Simulation,
    bedgraph_text,
    check_mix,
    check_output_paths,
    hits_bed_text,
    mutated_fraction,
    record_layout,
    simulate,
    write_mutations_vcf,
    write_outputs,
)

MIN_REFIT_COSINE = 0.99


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seqmodel-simulate",
        description="Simulate somatic point mutations on real sequence: per-base rates from a mix "
        "of COSMIC SBS signatures, raised inside motif hits; mutations drawn over many genomes.",
    )
    p.add_argument("--fasta", required=True, help="sequences (FASTA, plain or gzip)")
    p.add_argument("--signatures", required=True, help="COSMIC SBS table (96 channels x sigs)")
    p.add_argument("--mix", required=True, help="signature weights, e.g. SBS1=0.2,SBS5=0.8")
    p.add_argument("--genomes", type=int, default=100, help="number of genomes (default 100)")
    p.add_argument(
        "--mean-rate",
        type=float,
        required=True,
        help="mean per-genome mutation probability per non-N base, before hotspots",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--motifs", help="motif file (JASPAR .jaspar or MEME) for hotspots")
    p.add_argument("--motif-id", help="id of the hotspot motif in --motifs, e.g. MA0139.1")
    p.add_argument(
        "--motif-threshold",
        help="hit threshold: a log2-odds score (e.g. 12) or a relative score (e.g. 85%%)",
    )
    p.add_argument(
        "--motif-factor",
        type=float,
        help="rate multiplier inside motif hits, any value > 0 (e.g. 20, or 2 for a mild hotspot)",
    )
    p.add_argument(
        "--regional-cv",
        type=float,
        default=0.0,
        help="coefficient of variation of a regional rate factor: a smooth log-normal multiplier over "
        "genome position, measured as the CV of its mean over windows of --regional-scale bp (default 0: "
        "no regional factor). Real rates vary by region: the breast-cancer SNVs of chr20 have a CV of "
        "about 0.27 per 1-Mb window after removing the Poisson noise of the counts",
    )
    p.add_argument(
        "--regional-scale",
        type=float,
        default=1_000_000,
        help="length scale of the regional factor in bp (default 1000000); records named "
        "chrom:start-end take it at their genome position, so neighbouring records share it",
    )
    p.add_argument(
        "--regional-seed",
        type=int,
        help="seed of the regional factor (default: --seed); fixing it keeps the true rate while "
        "--seed draws new mutations",
    )
    p.add_argument("--out-vcf", required=True, help="mutations (.vcf, or .vcf.gz for BGZF)")
    p.add_argument("--out-rate", required=True, help="true per-base rate (.bedgraph[.gz])")
    p.add_argument("--out-hits", help="motif hits used as hotspots (.bed[.gz])")
    p.add_argument(
        "--validate",
        action="store_true",
        help="refit the simulated spectrum to the mix's signatures (NNLS) and stop, writing nothing, "
        f"unless the refit weights have cosine >= {MIN_REFIT_COSINE} with the requested mix (with hotspots: "
        "on the mutations outside motif hits)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `seqmodel-simulate`; bad input ends with one line and exit code 2."""
    run_cli(lambda: _run(argv), argparse_flags(parser()))


def _run(argv: Sequence[str] | None) -> None:
    p = parser()
    args = p.parse_args(argv)
    hotspot_args = (args.motif_id, args.motif_threshold, args.motif_factor)
    if args.motifs and None in hotspot_args:
        p.error("--motifs needs --motif-id, --motif-threshold and --motif-factor")
    if not args.motifs and (any(a is not None for a in hotspot_args) or args.out_hits):
        p.error("--motif-id, --motif-threshold, --motif-factor and --out-hits need --motifs")
    outputs = [path for path in (args.out_vcf, args.out_rate, args.out_hits) if path]
    if len({Path(path).resolve() for path in outputs}) < len(outputs):
        p.error("--out-vcf, --out-rate and --out-hits must be different files")
    check_output_paths(outputs)

    table = read_signatures(require_file(args.signatures, "signature table"))
    mix = parse_mix(args.mix)
    spectrum = table.mix(mix)
    hotspot = None
    if args.motifs:
        motif = select_motif(read_motifs(args.motifs), args.motif_id, args.motifs)
        pwm = motif.pwm(DEFAULT_PSEUDOCOUNT)
        hotspot = Hotspot(pwm, _threshold(args.motif_threshold, pwm), args.motif_factor)
    records = load_fasta(args.fasta)
    record_layout(records, args.fasta)
    simulation = simulate(
        records,
        spectrum,
        mean_rate=args.mean_rate,
        genomes=args.genomes,
        seed=args.seed,
        hotspot=hotspot,
        regional_cv=args.regional_cv,
        regional_scale=args.regional_scale,
        regional_seed=args.regional_seed,
    )
    texts = {
        args.out_vcf: lambda handle: write_mutations_vcf(handle, simulation, _source_line(args)),
        args.out_rate: bedgraph_text(simulation),
    }
    if args.out_hits:
        texts[args.out_hits] = hits_bed_text(simulation)
    checks = [check_mix(simulation, table, mix)]
    if hotspot is not None:
        checks.append(check_mix(simulation, table, mix, outside_hotspots=True))
    report = [_summary(simulation), *(_mix_line(check, i == 1) for i, check in enumerate(checks))]
    if args.validate and checks[-1].weights_cosine < MIN_REFIT_COSINE:
        raise SeqmodelInputError(
            None,
            "--validate",
            f"the refit recovers the mix with cosine {checks[-1].weights_cosine:.4f} < {MIN_REFIT_COSINE} "
            f"({checks[-1].mutations} mutations); simulate more genomes or sequence. Nothing written",
        )
    write_outputs(texts)
    print("\n".join(report + [f"wrote {path}" for path in texts]))


def _mix_line(check: MixCheck, outside_hotspots: bool) -> str:
    which = "outside motif hits" if outside_hotspots else "all"
    weights = ", ".join(
        f"{name} {check.fit.weights[name]:.3f} (asked {asked:.3f})" for name, asked in check.requested.items()
    )
    return (
        f"NNLS refit of the spectrum ({which}, {check.mutations} mutations): {weights}; "
        f"cosine of weights {check.weights_cosine:.4f}, of spectra {check.spectrum_cosine:.4f}"
    )


def _threshold(text: str, pwm: PositionWeightMatrix) -> float:
    try:
        return pwm_threshold(text, pwm)
    except ValueError as error:
        raise ParameterError("motif_threshold", str(error)) from None


def _source_line(args: argparse.Namespace) -> str:
    """The parameters in a form that reruns the simulation (paths as file names only)."""
    words = [
        "seqmodel-simulate",
        f"fasta={Path(args.fasta).name}",
        f"signatures={Path(args.signatures).name}",
        f"mix={args.mix}",
        f"genomes={args.genomes}",
        f"mean_rate={args.mean_rate}",
        f"seed={args.seed}",
    ]
    if args.motifs:
        words += [
            f"motifs={Path(args.motifs).name}",
            f"motif_id={args.motif_id}",
            f"motif_threshold={args.motif_threshold}",
            f"motif_factor={args.motif_factor}",
            f"pseudocount={DEFAULT_PSEUDOCOUNT}",
        ]
    if args.regional_cv > 0:
        words += [
            f"regional_cv={args.regional_cv}",
            f"regional_scale={args.regional_scale:g}",
            f"regional_seed={args.seed if args.regional_seed is None else args.regional_seed}",
        ]
    return " ".join(words)


def _summary(simulation: Simulation) -> str:
    mutations = simulation.mutations
    hot = sum(int(m.sum()) for m in simulation.in_hotspot)
    bases = mutated_fraction(simulation)["all"][1]
    lines = [
        f"{len(simulation.records)} records, {bases} non-N bases, {hot} in motif hits "
        f"({100 * hot / bases:.2f} %)",
        f"{len(mutations)} (site, alt) lines, {int(mutations.carriers.sum())} mutations "
        f"over {simulation.genomes} genomes",
    ]
    groups = {"all records": list(range(len(simulation.records)))}
    for index, record in enumerate(simulation.records):
        if "label" in record.fields:
            groups.setdefault(f"label={record.fields['label']}", []).append(index)
    for name, indices in groups.items():
        fractions = mutated_fraction(simulation, indices)
        lines.append(
            f"bases mutated in >= 1 genome, {name}: "
            + ", ".join(f"{key} {100 * f:.2f} % of {n}" for key, (f, n) in fractions.items())
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
