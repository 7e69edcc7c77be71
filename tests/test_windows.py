import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmodel.data.batches import BatchLoader, WindowAssembler
from seqmodel.data.dataset import load_dataset
from seqmodel.data.tiling import stream_tiles
from seqmodel.data.windows import WindowSampler, tile_starts


def tile_plan(length: int, window: int, overlap: int) -> np.ndarray:
    """The tiles `stream_tiles` should give, all at once: `(T, 3)` rows (start, core_start, core_end)."""
    margin = overlap // 2
    starts = tile_starts(length, window, window - 2 * margin)
    core_end = np.minimum(starts + window - margin, length)
    core_end[-1] = length
    core_start = np.concatenate([[0], core_end[:-1]])
    return np.stack([starts, core_start, core_end], axis=1).astype(np.int64)


@given(st.integers(1, 5000), st.integers(1, 300), st.integers(1, 300))
def test_tile_starts_cover_every_base(length, window, stride):
    stride = min(stride, window)
    starts = tile_starts(length, window, stride)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all() and starts.min() >= 0 and (length <= window or starts.max() + window == length)


@given(st.integers(1, 20000), st.integers(2, 400), st.integers(0, 399))
def test_tile_cores_are_disjoint_and_cover_the_record(length, window, overlap):
    overlap = overlap % window
    tiles = stream_tiles(0, [np.zeros(length, dtype=np.uint8)], window, overlap)
    counts = np.zeros(length, int)
    for tile in tiles:
        assert tile.start <= tile.core_start < tile.core_end <= tile.start + window
        counts[tile.core_start : tile.core_end] += 1
    assert (counts == 1).all()


@settings(max_examples=60)
@given(st.integers(1, 500), st.integers(1, 64), st.integers(1, 4), st.integers(0, 3), st.booleans())
def test_rank_shards_are_disjoint_and_union_is_the_epoch(num_windows, batch_size, world_size, epoch, shuffle):
    world_size = min(world_size, num_windows)
    seen = []
    for rank in range(world_size):
        sampler = WindowSampler(num_windows, batch_size, shuffle, seed=3, rank=rank, world_size=world_size)
        sampler.set_epoch(epoch)
        assert (
            len(sampler) == WindowSampler(num_windows, batch_size, shuffle, 3, 0, world_size).batches_per_rank
        )
        for i in range(len(sampler)):
            batch = sampler.batch_windows(i)
            assert len(batch) <= batch_size
            seen.extend(batch.tolist())
    assert sorted(seen) == list(range(num_windows))


def test_epochs_shuffle_differently_and_reproducibly():
    a, b = WindowSampler(100, 10, True, seed=1), WindowSampler(100, 10, True, seed=1)
    first = a.batch_windows(0).tolist()
    assert first == b.batch_windows(0).tolist()
    a.set_epoch(1)
    assert a.batch_windows(0).tolist() != first


def test_batches_pad_short_records_and_mask_n(small_fasta):
    dataset = load_dataset(small_fasta)
    assembler = WindowAssembler(dataset, window=50, stride=50, rc_augment=False, seed=0)
    batch = assembler.assemble(np.arange(len(assembler)))
    assert batch.tokens.shape == (len(assembler), 50)
    assert batch.lengths[0] == 17 and not batch.mask[0, 17:].any() and batch.mask[0, :17].all()
    # record "long": 60 bases, then 5 N (offsets 60-64) -> the second window (start 50) masks 10-14.
    second_long = [i for i, (r, s) in enumerate(assembler.windows) if r == 2 and s == 50][0]
    assert not batch.mask[second_long, 10:15].any()
    assert batch.seq_target.tolist() == [dataset.labels[r] for r, _ in assembler.windows]


def test_rc_augmentation_flips_tokens_and_targets_together(small_fasta):
    dataset = load_dataset(small_fasta)
    dataset.base_target[::7] = 1.0
    plain = WindowAssembler(dataset, 50, 50, rc_augment=False, seed=0).assemble(np.arange(6))
    augmented = WindowAssembler(dataset, 50, 50, rc_augment=True, seed=0).assemble(np.arange(6))
    for i in range(6):
        n = int(plain.lengths[i])
        same = bool((plain.tokens[i, :n] == augmented.tokens[i, :n]).all())
        flipped = np.array_equal(augmented.base_target[i, :n].numpy(), plain.base_target[i, :n].numpy()[::-1])
        assert same or flipped


def test_loader_resumes_mid_epoch_at_the_next_batch(small_fasta):
    dataset = load_dataset(small_fasta)

    def make(start_index=None):
        assembler = WindowAssembler(dataset, 20, 20, rc_augment=True, seed=5)
        return BatchLoader(assembler, WindowSampler(len(assembler), 4, True, seed=5), start_index)

    full = [b.window_ids.tolist() for b in make()]
    rest = [b.window_ids.tolist() for b in make(start_index=lambda: 3)]
    assert full[3:] == rest and len(full) > 4


@settings(max_examples=150)
@given(st.integers(1, 3000), st.integers(2, 300), st.integers(0, 299), st.integers(1, 700))
def test_streamed_tiles_equal_the_tile_plan(length, window, overlap, chunk):
    overlap = overlap % window
    tokens = np.random.default_rng(length).integers(0, 5, length).astype(np.uint8)
    chunks = [tokens[i : i + chunk] for i in range(0, length, chunk)]
    tiles = list(stream_tiles(7, chunks, window, overlap))
    plan = tile_plan(length, window, overlap)
    assert [(t.start, t.core_start, t.core_end) for t in tiles] == [tuple(row) for row in plan.tolist()]
    for t in tiles:
        assert t.length == min(window, length - t.start)
        np.testing.assert_array_equal(t.tokens[: t.length], tokens[t.start : t.start + t.length])
        assert (t.tokens[t.length :] == 4).all()
    assert [t.record_length for t in tiles] == [None] * (len(tiles) - 1) + [length]


def test_split_field_in_fasta_headers_chooses_the_splits(tmp_path):
    from seqmodel.data.datamodule import SeqDataModule
    from seqmodel.errors import SeqmodelInputError

    fasta = tmp_path / "prepared.fa"
    splits = ["train", "val", "train", "test", "train"]
    fasta.write_text("".join(f">r{i} label={i % 2} split={s}\nACGTACGTAC\n" for i, s in enumerate(splits)))
    datamodule = SeqDataModule(fasta=str(fasta), window=10, cpu_workers=0, split_from_headers=True)
    datamodule.setup()
    assert {name: part.ids for name, part in datamodule.splits.items()} == {
        "train": ["r0", "r2", "r4"],
        "val": ["r1"],
        "test": ["r3"],
    }
    fasta.write_text(">a label=0 split=train\nACGT\n>b label=1 split=holdout\nACGT\n")
    with pytest.raises(SeqmodelInputError, match=r"record 2 \(b\): split=holdout"):
        SeqDataModule(fasta=str(fasta), window=10, cpu_workers=0, split_from_headers=True).setup()
