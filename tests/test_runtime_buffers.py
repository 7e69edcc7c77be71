"""The pinned buffer ring: fixed, reused, returned; copies go to the device asynchronously."""

from __future__ import annotations

import pytest
import torch

from seqmodel.runtime import Runtime
from seqmodel.runtime.buffers import PinnedBufferRing

TIMEOUT = 10.0
SPECS = {"tokens": ((8, 64), torch.uint8), "index": ((1,), torch.int64)}


def test_buffer_ring_count_constant_over_epoch():
    prefetch, hold = 3, 1
    ring = PinnedBufferRing(SPECS, slots=prefetch + hold + 1)
    assert ring.pinned == torch.cuda.is_available()
    pointers = {slot["tokens"].data_ptr() for slot in ring.slots}
    allocations = ring.allocations

    def make_batch(i: int):
        slot = ring.acquire(timeout=TIMEOUT)
        slot["tokens"].fill_(i % 251)
        slot["index"][0] = i
        return slot

    seen = set()
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        batches = rt.ordered_map(make_batch, range(40), prefetch=prefetch, timeout=TIMEOUT)
        for i, slot in enumerate(ring.recycle(batches, hold=hold)):
            on_device = slot.to("cpu")
            assert on_device["index"].item() == i and bool((on_device["tokens"] == i % 251).all())
            assert len(ring) == prefetch + hold + 1 and ring.allocations == allocations
            seen.add(slot["tokens"].data_ptr())
    assert seen <= pointers
    assert ring.free == len(ring)  # every slot came back


def test_ring_refuses_double_release_and_times_out_when_all_held():
    ring = PinnedBufferRing(SPECS, slots=1, pin=False)
    slot = ring.acquire(timeout=TIMEOUT)
    with pytest.raises(TimeoutError, match="no free buffer slot"):
        ring.acquire(timeout=0.05)
    slot.release()
    with pytest.raises(ValueError, match="not held"):
        slot.release()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_pinned_slot_copies_to_gpu_non_blocking_and_waits_before_reuse():
    ring = PinnedBufferRing(SPECS, slots=2)
    assert ring.pinned and all(s["tokens"].is_pinned() for s in ring.slots)
    for i in range(10):
        slot = ring.acquire(timeout=TIMEOUT)
        slot["tokens"].fill_(i)
        on_gpu = slot.to("cuda")
        slot.release()
        assert on_gpu["tokens"].is_cuda and int(on_gpu["tokens"][0, 0]) == i
