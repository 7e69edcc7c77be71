"""`seqmodel-predict`: per-base mutation risk and per-record class probabilities for any FASTA."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from seqmodel.config import CONFIG_DIR
from seqmodel.data.intervals import overlapping_pairs
from seqmodel.errors import SeqmodelInputError, run_cli
from seqmodel.io.atomic import atomic_text, sequence_table_header, sequence_table_row
from seqmodel.io.bed import read_bed
from seqmodel.io.fasta import FastaChunk, read_fasta, read_fasta_chunks
from seqmodel.io.regions import format_region
from seqmodel.io.spool import SpoolSink, merge_spools
from seqmodel.io.tracks import TrackWriter, track_suffix
from seqmodel.models.predictor import class_probabilities
from seqmodel.runtime import Runtime

USAGE = "seqmodel-predict ckpt_path=... input=... output=..."


def windows_path(output: str | os.PathLike) -> Path:
    """`risk.bedgraph` -> `risk.windows.tsv`: the per-window table of `predict.sequence_window`."""
    output = Path(output)
    return output.with_name(output.name[: -len(track_suffix(output))] + ".windows.tsv")


def window_table_header(classes) -> str:
    return "\t".join(["id", "start", "end"] + [f"p_{name}" for name in classes]) + "\n"


def window_table_row(record_id: str, start: int, end: int, probabilities: np.ndarray) -> str:
    return "\t".join([record_id, str(start), str(end)] + [f"{p:.6g}" for p in probabilities]) + "\n"


def sequences_path(output: str | os.PathLike) -> Path:
    """`risk.bedgraph` -> `risk.sequences.tsv`: the output's stem (format suffix dropped)."""
    output = Path(output)
    return output.with_name(output.name[: -len(track_suffix(output))] + ".sequences.tsv")


class OutputSink:
    """Feeds predictions to the track writer and the per-record table, and counts progress."""

    def __init__(self, track: TrackWriter, table, progress, windows=None):
        self.track, self.table, self.progress, self.windows = track, table, progress, windows
        self.bases = 0

    def window_done(self, record_id: str, start: int, end: int, probabilities: np.ndarray) -> None:
        self.windows.write(window_table_row(record_id, start, end, probabilities))

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        self.track.segment(record_id, start, values)

    def record_done(self, record_id: str, length: int, class_sum: np.ndarray, weight: float) -> None:
        self.track.end_record(record_id, length)
        self.table.write(sequence_table_row(record_id, length, class_probabilities(class_sum, weight)))
        self.progress.update(length)
        self.bases += length


@dataclass
class FlankedRegion:
    """A `regions=` interval `[start, end)` on `chrom`, predicted with flanks from `flank_start`."""

    chrom: str
    start: int
    end: int
    chrom_length: int
    flank_start: int  # where the predicted (flanked) sequence starts on the chrom
    last_on_chrom: bool


class RegionSink:
    """Maps predictions of flanked region sequences back onto their chromosome's coordinates."""

    def __init__(self, inner: OutputSink, regions: dict[str, FlankedRegion]):
        self.inner, self.regions = inner, regions

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        region = self.regions[record_id]
        lo = max(region.start, region.flank_start + start)
        hi = min(region.end, region.flank_start + start + len(values))
        if lo < hi:
            offset = lo - region.flank_start - start
            self.inner.track.segment(region.chrom, lo, values[offset : offset + hi - lo])

    def record_done(self, record_id: str, length: int, class_sum: np.ndarray, weight: float) -> None:
        region = self.regions.pop(record_id)
        probabilities = class_probabilities(class_sum, weight)
        self.inner.table.write(sequence_table_row(record_id, region.end - region.start, probabilities))
        self.inner.progress.update(region.end - region.start)
        self.inner.bases += region.end - region.start
        if region.last_on_chrom:
            self.inner.track.end_record(region.chrom, region.chrom_length)


def read_regions(path: str | os.PathLike) -> dict[str, list[tuple[int, int, int]]]:
    """BED intervals by chrom, as (start, end, line), sorted; overlaps are an error."""
    intervals = list(read_bed(path, "regions file"))
    for i, j in overlapping_pairs([(r.chrom, r.start, r.end) for r in intervals]):
        first, second = sorted((intervals[i], intervals[j]), key=lambda r: r.line)
        raise SeqmodelInputError(path, f"line {second.line}", f"region overlaps the one on line {first.line}")
    by_chrom: dict[str, list[tuple[int, int, int]]] = {}
    for interval in intervals:
        by_chrom.setdefault(interval.chrom, []).append((interval.start, interval.end, interval.line))
    return {chrom: sorted(rows) for chrom, rows in by_chrom.items()}


def region_records(
    fasta: str, regions_path: str, flank: int, regions: dict[str, FlankedRegion]
) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Flanked sequences of the BED regions, in FASTA order; fills `regions` for the sink."""
    wanted = read_regions(regions_path)
    for record in read_fasta(fasta):
        rows = wanted.pop(record.id, [])
        for i, (start, end, line) in enumerate(rows):
            if end > len(record):
                message = f"region end {end} is past the end of {record.id} ({len(record)})"
                raise SeqmodelInputError(regions_path, f"line {line}", message)
            lo, hi = max(0, start - flank), min(len(record), end + flank)
            key = format_region(record.id, start, end)
            regions[key] = FlankedRegion(record.id, start, end, len(record), lo, i == len(rows) - 1)
            yield key, [record.tokens[lo:hi]]
    if wanted:
        chrom, rows = next(iter(wanted.items()))
        raise SeqmodelInputError(regions_path, f"line {rows[0][2]}", f"no FASTA record named {chrom!r}")


def chunked_records(chunks: Iterable[FastaChunk]) -> Iterator[tuple[str, Iterator[np.ndarray]]]:
    """Group a chunk stream into (record id, that record's token chunks), lazily, in bounded memory.

    Each record's chunk iterator must be consumed before the next record is taken.
    """
    chunks = iter(chunks)
    current = next(chunks, None)
    while current is not None:
        first = current

        def record_chunks(chunk: FastaChunk = first) -> Iterator[np.ndarray]:
            nonlocal current
            while True:
                yield chunk.tokens
                if chunk.last:
                    current = next(chunks, None)
                    return
                chunk = next(chunks)

        yield first.record_id, record_chunks()
        if current is first:
            raise RuntimeError(f"record {first.record_id} was not consumed before the next one")


def predict_into(cfg: DictConfig, predictor, sink, owns=None) -> None:
    """Run `predictor` over the input (or its regions) into `sink`; `owns` picks a rank's tiles."""
    if cfg.regions:
        regions: dict[str, FlankedRegion] = {}
        records = region_records(cfg.input, cfg.regions, predictor.window // 2, regions)
        predictor.run(records, RegionSink(sink, regions), owns)
    else:
        with Runtime(cpu_workers=cfg.predict.cpu_workers, io_workers=cfg.predict.io_workers) as runtime:
            predictor.run(chunked_records(read_fasta_chunks(cfg.input, runtime=runtime)), sink, owns)


def predict_by_rank(
    cfg: DictConfig, predictor, output: Path, table_path: Path, classes, progress
) -> int | None:
    """Several devices through Lightning Fabric (DDP): ranks take tiles in turn, rank 0 merges.

    Every rank reads the whole input (cheap next to the model) and predicts the tiles whose
    index is its own modulo the world size into a spool beside the output; rank 0 merges the
    spools in record and position order into the final, atomically written outputs.
    Returns the bases written on rank 0, None on the other ranks.
    """
    import shutil

    import lightning as L

    accelerator = "cuda" if str(predictor.device).startswith("cuda") else "cpu"
    fabric = L.Fabric(
        accelerator=accelerator, devices=cfg.predict.devices, num_nodes=cfg.predict.num_nodes, strategy="ddp"
    )
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    predictor.move_to(fabric.device)
    spool_dir = output.parent / f".{output.name}.ranks"
    if rank == 0:
        spool_dir.mkdir(exist_ok=True)
    fabric.barrier()
    stride = max(predictor.window - 2 * (predictor.overlap // 2), 1)
    try:
        with open(spool_dir / f"rank{rank}.spool", "wb") as handle:
            predict_into(
                cfg,
                predictor,
                SpoolSink(handle),
                owns=lambda t: (t.record + t.start // stride) % world == rank,
            )
        fabric.barrier()
        if rank == 0:
            with TrackWriter(output, cfg.predict.bigwig_zooms) as track, atomic_text(table_path) as table:
                table.write(sequence_table_header(classes))
                sink = OutputSink(track, table, progress)
                merge_spools(sorted(spool_dir.glob("rank*.spool")), sink)
        fabric.barrier()
    finally:
        if rank == 0:
            shutil.rmtree(spool_dir, ignore_errors=True)
    return sink.bases if rank == 0 else None


def predict(cfg: DictConfig) -> tuple[Path, Path]:
    """Predict every base of every record (or region) of `cfg.input`; returns the two output paths."""
    from tqdm import tqdm

    from seqmodel.models.predictor import RecordPredictor

    for key in ("ckpt_path", "input", "output"):
        if OmegaConf.is_missing(cfg, key):
            raise SeqmodelInputError(
                None,
                None,
                f"Missing mandatory value: {key} (usage: {USAGE})",
            )
    output = Path(cfg.output)
    track_suffix(output)
    predictor = RecordPredictor.from_checkpoint(cfg.ckpt_path, cfg.predict)
    table_path = sequences_path(output)
    started = time.perf_counter()
    progress = tqdm(unit="b", unit_scale=True, desc="predict", disable=None, mininterval=1.0)
    if cfg.predict.devices > 1 or cfg.predict.num_nodes > 1:
        if cfg.regions or cfg.predict.sequence_window:
            message = "regions= and predict.sequence_window run on one device (predict.devices=1)"
            raise SeqmodelInputError(None, "config", message)
        bases = predict_by_rank(cfg, predictor, output, table_path, predictor.classes, progress)
    else:
        if cfg.regions and cfg.predict.sequence_window:
            raise SeqmodelInputError(
                None, "config", "predict.sequence_window is for whole records, not regions="
            )
        with contextlib.ExitStack() as outputs:
            track = outputs.enter_context(TrackWriter(output, cfg.predict.bigwig_zooms))
            table = outputs.enter_context(atomic_text(table_path))
            table.write(sequence_table_header(predictor.classes))
            windows = None
            if cfg.predict.sequence_window:
                windows = outputs.enter_context(atomic_text(windows_path(output)))
                windows.write(window_table_header(predictor.classes))
            sink = OutputSink(track, table, progress, windows)
            predict_into(cfg, predictor, sink)
        bases = sink.bases
    progress.close()
    elapsed = time.perf_counter() - started
    if bases is not None:  # rank 0, or the only process
        print(
            f"predicted {bases:,} bases in {elapsed:.1f} s ({bases / max(elapsed, 1e-9):,.0f} bases/s; "
            f"model forward {predictor.forward_seconds:.1f} s)"
        )
        print(f"per-base risk: {output}\nper-record table: {table_path}")
    return output, table_path


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(lambda: predict(cfg))


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
