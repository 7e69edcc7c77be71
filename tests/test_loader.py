"""The runtime-backed batch loader: same batches as the plain loader, errors, lifetime, trace."""

from __future__ import annotations

import json
import threading

import lightning as L
import numpy as np
import pytest
import torch

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.batches import Batch, BatchLoader, WindowAssembler
from seqmodel.data.datamodule import SeqDataModule
from seqmodel.data.dataset import load_dataset
from seqmodel.data.windows import WindowSampler
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.models.module import SeqLightningModule
from seqmodel.runtime import Runtime, TaskError

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def demo_dataset():
    dataset = load_dataset(DEMO_DATA_DIR / "ctcf_demo.fa.gz", DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz")
    dataset.true_rate = np.full(len(dataset.tokens), np.nan, dtype=np.float32)  # a truth track, made up
    dataset.true_rate[::3] = np.linspace(0, 1, len(dataset.true_rate[::3]), dtype=np.float32)
    return dataset


def make_loader(dataset, runtime=None, start_index=None, **kwargs) -> BatchLoader:
    assembler = WindowAssembler(dataset, window=150, stride=100, rc_augment=True, seed=7)
    sampler = WindowSampler(len(assembler), batch_size=24, shuffle=True, seed=7, rank=0, world_size=1)
    return BatchLoader(assembler, sampler, start_index, runtime=runtime, prefetch=3, **kwargs)


def epochs(loader: BatchLoader, n: int = 2) -> list[list[dict[str, np.ndarray]]]:
    out = []
    for epoch in range(n):
        loader.sampler.set_epoch(epoch)
        out.append([{k: v.numpy().copy() for k, v in b.tensors().items()} for b in loader])
    return out


def assert_same(a, b) -> None:
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert len(epoch_a) == len(epoch_b)
        for x, y in zip(epoch_a, epoch_b, strict=True):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)  # NaN == NaN here


def test_batches_identical_with_1_and_4_workers_and_without_runtime(demo_dataset):
    plain = epochs(make_loader(demo_dataset))
    assert len(plain[0]) > 10 and plain[0][0]["tokens"].shape == (24, 150)
    for workers in (1, 4):
        with Runtime(cpu_workers=workers, io_workers=1) as rt:
            assert_same(epochs(make_loader(demo_dataset, rt)), plain)
            assert_same(epochs(make_loader(demo_dataset, rt, ring=True)), plain)  # staged in a ring


def test_resume_index_and_epoch_are_kept_on_the_runtime(demo_dataset):
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        full = epochs(make_loader(demo_dataset, rt))
        rest = epochs(make_loader(demo_dataset, rt, start_index=lambda: 5))
    assert_same([e[5:] for e in full], rest)
    assert [b["window_ids"].tolist() for b in full[0]] != [b["window_ids"].tolist() for b in full[1]]


def test_assembled_windows_are_slices_or_their_reverse_complement(demo_dataset):
    assembler = WindowAssembler(demo_dataset, window=250, stride=100, rc_augment=True, seed=3)
    ids = np.arange(len(assembler))
    batch = assembler.assemble(ids, epoch=2)
    flips = 0
    for row, (record, start) in enumerate(assembler.windows):
        lo = demo_dataset.offsets[record] + start
        hi = min(lo + 250, demo_dataset.offsets[record + 1])
        n = hi - lo
        tokens, target = demo_dataset.tokens[lo:hi], demo_dataset.base_target[lo:hi]
        got_tokens, got_target = batch.tokens[row, :n].numpy(), batch.base_target[row, :n].numpy()
        if not np.array_equal(got_tokens, tokens):
            np.testing.assert_array_equal(got_tokens, alphabet.reverse_complement(tokens))
            np.testing.assert_array_equal(got_target, target[::-1])
            flips += 1
        else:
            np.testing.assert_array_equal(got_target, target)
        assert int(batch.lengths[row]) == n and torch.equal(batch.mask[row, :n], batch.tokens[row, :n] < 4)
        assert (batch.tokens[row, n:] == alphabet.N).all() and not batch.mask[row, n:].any()
        assert torch.isnan(batch.true_rate[row, n:]).all()
    assert 0.3 < flips / len(ids) < 0.7  # about half the windows are flipped


def bits(batch: Batch) -> dict[str, np.ndarray]:
    """A batch's arrays as raw bits (floats as integers: NaN payloads compared too)."""
    out = {k: v.numpy().copy() for k, v in batch.tensors().items()}
    return {k: v.view(np.int32) if v.dtype == np.float32 else v for k, v in out.items()}


@pytest.mark.parametrize("truth_track", [True, False], ids=["true-rate", "rate-fill"])
def test_fused_assembly_is_bit_identical_to_the_numpy_reference(demo_dataset, truth_track):
    pytest.importorskip("numba")
    dataset = demo_dataset
    if not truth_track:  # no truth track: one value broadcast over every base (filled, not gathered)
        dataset = load_dataset(
            DEMO_DATA_DIR / "ctcf_demo.fa.gz", DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"
        )
        assert dataset.true_rate.strides == (0,)
    padded = 0
    for seed in (0, 1, 7, 12345):
        for window, stride in ((250, 100), (1000, 700)):
            fused, reference = (
                WindowAssembler(dataset, window=window, stride=stride, rc_augment=True, seed=seed, engine=e)
                for e in ("numba", "numpy")
            )
            ids = np.random.default_rng(seed).permutation(len(fused))[:200]
            for epoch in (0, 3):
                a, b = fused.assemble(ids, epoch), reference.assemble(ids, epoch)
                padded += int((a.lengths < window).sum())
                assert 0 < int(a.tokens.eq(alphabet.N).sum())  # N padding (and Ns) are in these batches
                for key, value in bits(b).items():
                    np.testing.assert_array_equal(bits(a)[key], value, err_msg=f"{key} seed {seed}")
                # into a buffer-ring-like slot with more rows than the batch, as the loader does
                slot = {
                    k: torch.full((len(ids) + 3, *shape[1:]), 7).to(dtype)
                    for k, (shape, dtype) in fused.fields(len(ids) + 3).items()
                }
                for key, value in bits(fused.assemble(ids, epoch, out=slot)).items():
                    np.testing.assert_array_equal(value, bits(b)[key], err_msg=f"{key} in a slot")
    assert padded > 0


def test_assembler_engine_names_are_checked(demo_dataset):
    with pytest.raises(ValueError, match="engine"):
        WindowAssembler(demo_dataset, window=150, stride=100, rc_augment=True, seed=0, engine="cuda")


def test_ring_allocations_stay_constant_and_every_slot_comes_back(demo_dataset):
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        loader = make_loader(demo_dataset, rt, ring=True)
        allocations, pointers = loader.ring.allocations, {s["tokens"].data_ptr() for s in loader.ring.slots}
        kept = list(loader)  # batches are copies: keeping them all is safe
        assert loader.ring.allocations == allocations and len(loader.ring) == 3
        assert {s["tokens"].data_ptr() for s in loader.ring.slots} == pointers
        assert loader.ring.free == len(loader.ring)
        assert not {b.tokens.data_ptr() for b in kept} & pointers


def test_error_in_a_task_names_the_batch_and_earlier_batches_arrive(demo_dataset):
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        loader = make_loader(demo_dataset, rt)
        original = loader.assembler.assemble

        def assemble(window_ids, epoch=0, out=None):
            if 13 in window_ids.tolist():
                raise ValueError("broken window 13")
            return original(window_ids, epoch, out)

        loader.assembler.assemble = assemble
        bad = next(i for i in range(len(loader)) if 13 in loader.sampler.batch_windows(i).tolist())
        got = []
        with pytest.raises(
            TaskError, match=rf"assemble batch {bad} \[epoch=0 index={bad}\]: ValueError"
        ) as info:
            for batch in loader:
                got.append(batch)
        assert len(got) == bad and isinstance(info.value.original, ValueError)

        def bad_input(window_ids, epoch=0, out=None):
            raise SeqmodelInputError("genome.fa", "record 3 (chr3)", "character 'X' at position 9")

        loader.assembler.assemble = bad_input
        with pytest.raises(SeqmodelInputError) as info:
            next(iter(loader))
        assert str(info.value) == "genome.fa:record 3 (chr3): character 'X' at position 9"
        assert isinstance(info.value.__cause__, TaskError)


def tiny_module(datamodule: SeqDataModule) -> SeqLightningModule:
    return SeqLightningModule(
        model={
            "trunk": {"hidden_size": 8, "conv_channels": 8, "num_layers": 1},
            "per_base_head": {"hidden": 8},
            "pooled_head": {"hidden": 8},
        },
        num_classes=datamodule.num_classes,
        data_info=datamodule.data_info,
        loss={"w_base": 1.0, "w_seq": 0.5, "pos_weight": 1.0},
        optim={"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 0},
    )


def test_fit_runs_on_the_runtime_writes_a_trace_and_leaves_no_threads(tmp_path):
    before = set(threading.enumerate())
    datamodule = SeqDataModule(
        fasta=str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"),
        batch_size=256,  # 4 training steps per epoch
        cpu_workers=2,
        trace=str(tmp_path / "trace.json"),
        summary=True,
    )
    trainer = L.Trainer(
        max_epochs=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
    )
    trainer.fit(tiny_module(datamodule), datamodule=datamodule)
    assert datamodule._runtime is None
    assert set(threading.enumerate()) - before == set()

    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = [e["name"] for e in events if e["ph"] == "X"]
    steps = len(datamodule.train_dataloader())
    assert {f"assemble batch {i}" for i in range(steps)} <= set(names)
    assert names.count("assemble batch 0") == 2  # one per epoch
    workers = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert workers == {"cpu-0", "cpu-1", "io-0"}  # cpu_workers=2 as asked
    # The FASTA was read on the runtime too: blocks read on the I/O worker, tokenized on CPU workers.
    thread = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    reads = {thread[e["tid"]] for e in events if e["ph"] == "X" and e["name"].startswith("read ctcf_demo")}
    tokenizes = {thread[e["tid"]] for e in events if e["ph"] == "X" and e["name"].startswith("tokenize ctcf")}
    assert reads == {"io-0"} and tokenizes and tokenizes <= {"cpu-0", "cpu-1"}
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()
    assert "loader/assemble_count" in metrics[0]
    datamodule.teardown("fit")


def test_datamodule_without_runtime_when_cpu_workers_is_0():
    datamodule = SeqDataModule(fasta=str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"), cpu_workers=0)
    loader = datamodule.train_dataloader()
    assert loader.runtime is None and isinstance(next(iter(loader)), Batch)


def test_splits_index_into_the_one_token_array_and_batch_like_copies():
    fasta = str(DEMO_DATA_DIR / "ctcf_demo.fa.gz")
    datamodule = SeqDataModule(fasta=fasta, mutations=str(DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"))
    try:
        datamodule.setup()
        dataset = datamodule.dataset
        assert sum(len(split) for split in datamodule.splits.values()) == len(dataset)
        for name, split in datamodule.splits.items():
            assert split.tokens is dataset.tokens and split.base_target is dataset.base_target
            copy = dataset.subset(split.records)
            assert split.ids == copy.ids
            view = WindowAssembler(split, window=150, stride=100, rc_augment=True, seed=1)
            copied = WindowAssembler(copy, window=150, stride=100, rc_augment=True, seed=1)
            ids = np.arange(len(view))
            a, b = view.assemble(ids, epoch=1).tensors(), copied.assemble(ids, epoch=1).tensors()
            for key in a:
                np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=f"{name} {key}")
    finally:
        datamodule.teardown("fit")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_batches_arrive_on_the_device_equal_to_cpu_batches(demo_dataset):
    plain = epochs(make_loader(demo_dataset), 1)
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        loader = make_loader(demo_dataset, rt, device="cuda")
        assert loader.ring.pinned and all(s["tokens"].is_pinned() for s in loader.ring.slots)
        got = []
        for batch in loader:
            assert all(t.is_cuda for t in batch.tensors().values())
            assert batch.to("cuda", non_blocking=True).tokens.data_ptr() == batch.tokens.data_ptr()
            got.append({k: v.cpu().numpy() for k, v in batch.tensors().items()})
        torch.cuda.synchronize()
    assert_same([got], plain)
