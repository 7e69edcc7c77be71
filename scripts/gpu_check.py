"""The GPU check: correctness against the CPU, training and prediction throughput, data stall, H2D bandwidth.

    bash scripts/gpu_check.sh            # on a machine with a CUDA GPU (falls back to CPU and says so)

Prints one table per section and ends with a machine-readable line. Sizes are chosen so
the whole check takes a few minutes on one H100.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch

from seqmodel.data.batches import BatchLoader, WindowAssembler
from seqmodel.data.dataset import load_dataset
from seqmodel.data.windows import WindowSampler
from seqmodel.io import alphabet
from seqmodel.models.checkpoint import TrainedModel
from seqmodel.models.network import SeqModel
from seqmodel.models.predictor import InMemorySink, RecordPredictor
from seqmodel.runtime import Runtime

DEFAULT = {
    "trunk": {
        "cell": "lstm",
        "conv_channels": 64,
        "conv_kernel": 9,
        "conv_layers": 2,
        "hidden_size": 64,
        "num_layers": 2,
        "dropout": 0.1,
    },
    "per_base_head": {"hidden": 64},
    "pooled_head": {"hidden": 64, "pooling": "attention"},
}
LARGE = {
    "trunk": {
        "cell": "lstm",
        "conv_channels": 256,
        "conv_kernel": 9,
        "conv_layers": 2,
        "hidden_size": 256,
        "num_layers": 3,
        "dropout": 0.1,
    },
    "per_base_head": {"hidden": 256},
    "pooled_head": {"hidden": 256, "pooling": "attention"},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def agreement(device: torch.device, tokens: torch.Tensor, lengths: torch.Tensor) -> list[tuple]:
    """Max |Δ probability| of the device (fp32 strict, TF32, bf16 autocast) vs the CPU in fp32."""
    torch.manual_seed(0)
    net = SeqModel(2, **DEFAULT).eval()
    mask = tokens < alphabet.N
    with torch.inference_mode():
        ref_base, ref_cls = (
            torch.sigmoid(o) if i == 0 else torch.softmax(o, -1)
            for i, o in enumerate(net(tokens, mask, lengths))
        )
    rows = []
    on_device = net.to(device)
    args = (tokens.to(device), mask.to(device), lengths.to(device))
    for label, tf32, dtype, tolerance in (
        ("fp32", False, None, 1e-4),
        ("tf32", True, None, 5e-3),
        ("bf16 autocast", True, torch.bfloat16, 3e-2),
    ):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            base, cls = on_device(*args)
        diff_base = (torch.sigmoid(base.float()).cpu() - ref_base).abs().max().item()
        diff_cls = (torch.softmax(cls.float(), -1).cpu() - ref_cls).abs().max().item()
        rows.append(
            (label, diff_base, diff_cls, tolerance, "ok" if max(diff_base, diff_cls) <= tolerance else "FAIL")
        )
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return rows


def train_throughput(device: torch.device, config: dict, batch: int, window: int, steps: int) -> tuple:
    """Steps/s and bases/s of forward + backward + AdamW on batches already on the device."""
    torch.manual_seed(0)
    net = SeqModel(2, **config).to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    tokens = torch.randint(0, 4, (batch, window), device=device)
    lengths = torch.full((batch,), window, device=device)
    target = (torch.rand(batch, window, device=device) < 0.05).float()
    labels = torch.randint(0, 2, (batch,), device=device)
    bf16 = device.type == "cuda"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            base, cls = net(tokens, tokens < 4, lengths)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(base.float(), target)
        loss = loss + torch.nn.functional.cross_entropy(cls.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    elapsed = time.perf_counter() - started
    return steps / elapsed, steps * batch * window / elapsed


def data_stall(device: torch.device, fasta: Path, batch: int, steps: int, cpu_workers: int) -> tuple:
    """Share of step time the training loop waits for the runtime loader (real FASTA windows, 1 kb)."""
    dataset = load_dataset(fasta)
    assembler = WindowAssembler(dataset, window=1000, stride=1000, rc_augment=True, seed=0)
    sampler = WindowSampler(len(assembler), batch, shuffle=True, seed=0)
    torch.manual_seed(0)
    net = SeqModel(2, **DEFAULT).to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    waited = computed = 0.0
    done = 0
    bf16 = device.type == "cuda"
    with Runtime(cpu_workers=cpu_workers, io_workers=1) as runtime:
        epoch = 0
        while done < steps:
            sampler.set_epoch(epoch)
            loader = BatchLoader(
                assembler,
                sampler,
                runtime=runtime,
                prefetch=4,
                device=device if device.type == "cuda" else None,
            )
            iterator = iter(loader)
            while done < steps:
                t0 = time.perf_counter()
                try:
                    b = next(iterator)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    base, cls = net(b.tokens, b.mask, b.lengths)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(base.float(), b.base_target)
                loss = loss + torch.nn.functional.cross_entropy(cls.float(), b.seq_target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sync(device)  # so the step's time is the GPU's, not the launch's
                t2 = time.perf_counter()
                if done >= 3:  # warm-up steps excluded
                    waited += t1 - t0
                    computed += t2 - t1
                done += 1
            epoch += 1
    return waited / (waited + computed), (waited + computed) / max(done - 3, 1)


def h2d_bandwidth(device: torch.device, megabytes: int) -> list[tuple]:
    """GB/s of host-to-device copies from pinned vs pageable memory."""
    if device.type != "cuda":
        return []
    rows = []
    for label, pinned in (("pinned", True), ("pageable", False)):
        host = torch.empty(megabytes << 20, dtype=torch.uint8, pin_memory=pinned)
        dest = torch.empty_like(host, device=device)
        for _ in range(3):
            dest.copy_(host, non_blocking=True)
        sync(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            dest.copy_(host, non_blocking=True)
        end.record()
        sync(device)
        rows.append((label, 10 * host.numel() / (start.elapsed_time(end) / 1e3) / 1e9))
    return rows


def chr20_region(genome: Path, start: int, size: int) -> np.ndarray:
    with gzip.open(genome, "rt") as handle:
        handle.readline()
        text = "".join(line.strip() for line in handle)
    return alphabet.encode(text[start : start + size])


def prediction_speed(device: torch.device, tokens: np.ndarray, batch_size: int, bf16: bool) -> float:
    torch.manual_seed(0)
    predictor = RecordPredictor(
        TrainedModel(SeqModel(2, **DEFAULT), 200, ["0", "1"]),
        batch_size=batch_size,
        rc_average=True,
        device=device,
    )
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        predictor.run([("warm", [tokens[:200_000]])], InMemorySink())
        sync(device)
        started = time.perf_counter()
        predictor.run([("region", [tokens])], InMemorySink())
        sync(device)
    return len(tokens) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
        name, cudnn = torch.cuda.get_device_name(), torch.backends.cudnn.version()
        print(f"device: {name} | torch {torch.__version__} | cuDNN {cudnn}")
    else:
        print("device: no CUDA GPU visible: running the CPU fallback (GPU numbers still to be measured)")
    quick = args.quick or not cuda
    genome = args.data / "genome" / "GRCh37_chr20.fa.gz"
    windows = args.data / "bench" / "chr20_1kb_windows.fa.gz"

    print("\n## GPU vs CPU outputs (default model, 16 x 1 kb chr20 windows, max |Δ prob|)")
    dataset = load_dataset(windows)
    batch = WindowAssembler(dataset, 1000, 1000, False, 0).assemble(np.arange(16))
    print(f"{'mode':<14} {'per-base':>10} {'per-class':>10} {'tolerance':>10}")
    if cuda:
        for label, db, dc, tol, verdict in agreement(device, batch.tokens, batch.lengths):
            print(f"{label:<14} {db:>10.2e} {dc:>10.2e} {tol:>10.0e}  {verdict}")
    else:
        print("(needs a GPU)")

    print("\n## Training throughput (forward + backward + AdamW, bf16 on GPU)")
    print(f"{'model':<24} {'batch x window':>15} {'steps/s':>9} {'bases/s':>12}")
    plans = [("default (64h, 2 layers)", DEFAULT, 256, 1000), ("large (256h, 3 layers)", LARGE, 128, 1000)]
    for label, config, b, w in plans:
        b = 8 if quick else b
        rate, bases = train_throughput(device, config, b, w, steps=3 if quick else 30)
        print(f"{label:<24} {f'{b} x {w}':>15} {rate:>9.2f} {bases:>12,.0f}")

    print("\n## Data stall (runtime loader feeding the default model, chr20 1 kb windows)")
    b = 16 if quick else 256
    stall, step_s = data_stall(device, windows, b, steps=6 if quick else 60, cpu_workers=4 if cuda else 2)
    print(f"batch {b}: waiting for data {100 * stall:.2f} % of step time; step {1e3 * step_s:.1f} ms")

    print("\n## Host-to-device bandwidth")
    for label, gbps in h2d_bandwidth(device, 64):
        print(f"{label:<9} {gbps:>7.1f} GB/s (64 MB copies)")

    print("\n## Prediction (default model, rc_average, chr20 region)")
    size = 200_000 if quick else 5_000_000
    tokens = chr20_region(genome, 30_000_000, size)
    results = {}
    for label, bf16, batch_size in (
        ("fp32", False, 64 if quick else 2048),
        ("bf16", True, 64 if quick else 2048),
    ):
        if bf16 and not cuda:
            continue
        results[label] = prediction_speed(device, tokens, batch_size, bf16)
        print(f"{label:<5} batch {batch_size}: {results[label] / 1e6:.2f} Mb/s over {size / 1e6:.1f} Mb")
    print(
        f"\nstall_share={stall:.4f} predict_mb_per_s={max(results.values()) / 1e6:.2f} device={device.type}"
    )


if __name__ == "__main__":
    main()
