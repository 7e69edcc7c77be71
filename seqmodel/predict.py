"""`seqmodel-predict`: per-base mutation risk and per-record class probabilities for any FASTA."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from seqmodel.config import CONFIG_DIR
from seqmodel.data.fasta import read_fasta
from seqmodel.data.fasta_chunks import FastaChunk, read_fasta_chunks
from seqmodel.data.targets import read_sites
from seqmodel.data.tracks import TrackWriter, track_suffix
from seqmodel.data.writers import atomic_text, sequence_table_header, sequence_table_row
from seqmodel.errors import SeqmodelInputError, run_cli
from seqmodel.runtime import Runtime

USAGE = "seqmodel-predict ckpt_path=... input=... output=..."


def sequences_path(output: str | os.PathLike) -> Path:
    """`risk.bedgraph` -> `risk.sequences.tsv`: the output's stem (format suffix dropped)."""
    output = Path(output)
    return output.with_name(output.name[: -len(track_suffix(output))] + ".sequences.tsv")


class OutputSink:
    """Feeds predictions to the track writer and the per-record table, and counts progress."""

    def __init__(self, track: TrackWriter, table, progress):
        self.track, self.table, self.progress = track, table, progress

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        self.track.segment(record_id, start, values)

    def record_done(self, record_id: str, length: int, class_prob: np.ndarray) -> None:
        self.track.end_record(record_id, length)
        self.table.write(sequence_table_row(record_id, length, class_prob))
        self.progress.update(length)


@dataclass
class Region:
    chrom: str
    start: int
    end: int
    chrom_length: int
    flank_start: int  # where the predicted (flanked) sequence starts on the chrom
    last_on_chrom: bool


class RegionSink:
    """Maps predictions of flanked region sequences back onto their chromosome's coordinates."""

    def __init__(self, inner: OutputSink, regions: dict[str, Region]):
        self.inner, self.regions = inner, regions

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        region = self.regions[record_id]
        lo = max(region.start, region.flank_start + start)
        hi = min(region.end, region.flank_start + start + len(values))
        if lo < hi:
            offset = lo - region.flank_start - start
            self.inner.track.segment(region.chrom, lo, values[offset : offset + hi - lo])

    def record_done(self, record_id: str, length: int, class_prob: np.ndarray) -> None:
        region = self.regions.pop(record_id)
        self.inner.table.write(sequence_table_row(record_id, region.end - region.start, class_prob))
        self.inner.progress.update(region.end - region.start)
        if region.last_on_chrom:
            self.inner.track.end_record(region.chrom, region.chrom_length)


def read_regions(path: str | os.PathLike) -> dict[str, list[tuple[int, int, int]]]:
    """BED intervals by chrom, as (start, end, line), sorted; overlaps are an error."""
    by_chrom: dict[str, list[tuple[int, int, int]]] = {}
    for line, chrom, start, end, _ in read_sites(Path(path)):
        by_chrom.setdefault(chrom, []).append((start, end, line))
    for chrom, rows in by_chrom.items():
        rows.sort()
        for (_, prev_end, _), (start, _, line) in zip(rows, rows[1:], strict=False):
            if start < prev_end:
                raise SeqmodelInputError(path, f"line {line}", f"region overlaps the previous one on {chrom}")
    return by_chrom


def region_records(
    fasta: str, regions_path: str, flank: int, regions: dict[str, Region]
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
            key = f"{record.id}:{start}-{end}"
            regions[key] = Region(record.id, start, end, len(record), lo, i == len(rows) - 1)
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


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def predict(cfg: DictConfig) -> tuple[Path, Path]:
    """Predict every base of every record (or region) of `cfg.input`; returns the two output paths."""
    from tqdm import tqdm

    from seqmodel.models.checkpoint import load_trained_model
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
    device = pick_device(cfg.predict.device)
    trained = load_trained_model(cfg.ckpt_path, device)
    predictor = RecordPredictor(
        trained,
        batch_size=cfg.predict.batch_size,
        overlap=cfg.predict.overlap,
        rc_average=cfg.predict.rc_average,
        device=device,
    )
    table_path = sequences_path(output)
    started = time.perf_counter()
    progress = tqdm(unit="b", unit_scale=True, desc="predict", disable=None, mininterval=1.0)
    with TrackWriter(output) as track, atomic_text(table_path) as table:
        table.write(sequence_table_header(trained.classes))
        sink = OutputSink(track, table, progress)
        if cfg.regions:
            regions: dict[str, Region] = {}
            records = region_records(cfg.input, cfg.regions, predictor.window // 2, regions)
            predictor.run(records, RegionSink(sink, regions))
        else:
            with Runtime(cpu_workers=cfg.predict.cpu_workers, io_workers=cfg.predict.io_workers) as runtime:
                predictor.run(chunked_records(read_fasta_chunks(cfg.input, runtime=runtime)), sink)
    progress.close()
    elapsed = time.perf_counter() - started
    bases = int(progress.n)
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
