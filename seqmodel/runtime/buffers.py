"""A fixed ring of preallocated (page-locked where CUDA exists) batch buffers.

Pinning and unpinning memory per batch costs system calls and TLB shootdowns;
allocating per batch grows memory with the prefetch depth. The ring allocates
``slots`` buffer sets once and hands them out again and again, so every byte of
in-flight batch memory is counted up front.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch


class BufferSlot:
    """One ring entry: named tensors of fixed shape, valid until released.

    A short last batch fills a prefix: ``slot["tokens"][:n]``.
    """

    __slots__ = ("ring", "index", "tensors", "_copy_done", "_held")

    def __init__(self, ring: PinnedBufferRing, index: int, tensors: dict[str, torch.Tensor]):
        self.ring = ring
        self.index = index
        self.tensors = tensors
        self._copy_done: torch.cuda.Event | None = None  # last async copy out of this slot
        self._held = False

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def to(
        self, device: torch.device | str, non_blocking: bool = True, rows: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Copy every tensor (its first `rows` rows when given) to `device`.

        Asynchronous from pinned memory to a GPU, on the current CUDA stream; the slot
        is not reused before that copy has finished (acquire waits for it, and
        `copy_done` is the event to make another stream wait on). On the CPU the
        slot's own tensors come back, valid until release.
        """
        device = torch.device(device)
        out = {
            k: (t if rows is None else t[:rows]).to(device, non_blocking=non_blocking)
            for k, t in self.tensors.items()
        }
        if device.type == "cuda" and non_blocking:
            self._copy_done = torch.cuda.Event()
            self._copy_done.record(torch.cuda.current_stream(device))
        return out

    @property
    def copy_done(self) -> torch.cuda.Event | None:
        """The event recorded after the last asynchronous copy out of this slot, if any."""
        return self._copy_done

    def release(self) -> None:
        """Give the slot back to its ring."""
        self.ring.release(self)


class PinnedBufferRing:
    """`slots` preallocated buffer sets, handed out by `acquire` and taken back by `release`.

    specs: name -> (shape, dtype), e.g. ``{"tokens": ((64, 1000), torch.uint8)}``.
    pin: page-lock the buffers; default ``torch.cuda.is_available()`` (the CPU build
    of torch raises on pinning).
    """

    def __init__(
        self,
        specs: Mapping[str, tuple[Sequence[int], torch.dtype]],
        slots: int,
        pin: bool | None = None,
    ):
        if slots < 1:
            raise ValueError(f"a ring needs at least one slot, got {slots}")
        self.pinned = torch.cuda.is_available() if pin is None else pin

        def allocate(index: int) -> BufferSlot:
            tensors = {
                name: torch.empty(tuple(shape), dtype=dtype, pin_memory=self.pinned)
                for name, (shape, dtype) in specs.items()
            }
            return BufferSlot(self, index, tensors)

        self.slots = [allocate(i) for i in range(slots)]
        self.allocations = sum(len(slot.tensors) for slot in self.slots)  # never changes
        self._free = deque(self.slots)
        self._cv = threading.Condition()

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def free(self) -> int:
        """Slots not handed out."""
        with self._cv:
            return len(self._free)

    def acquire(self, timeout: float | None = None) -> BufferSlot:
        """Take a free slot, waiting up to `timeout` s for one (TimeoutError after).

        Fed by `Runtime.ordered_map` and read through `recycle`, a ring of
        ``prefetch + hold + 1`` slots never makes a producer wait here.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while not self._free:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no free buffer slot in {timeout} s ({len(self)} slots, all held)")
                self._cv.wait(0.2 if left is None else min(left, 0.2))  # 0.2 s: Ctrl-C stays prompt
            slot = self._free.popleft()
            slot._held = True
        if slot._copy_done is not None:
            slot._copy_done.synchronize()
            slot._copy_done = None
        return slot

    def release(self, slot: BufferSlot) -> None:
        """Return `slot`; releasing a slot twice or one from another ring is an error."""
        with self._cv:
            if slot.ring is not self or not slot._held:
                raise ValueError(f"slot {slot.index} is not held from this ring")
            slot._held = False
            self._free.append(slot)
            self._cv.notify()

    def recycle(self, slots: Iterable[BufferSlot], hold: int = 1) -> Iterator[BufferSlot]:
        """Yield `slots`; the consumer keeps the last `hold`, older ones go back to the ring.

        hold=1 frees a batch when the next is handed out; a consumer that keeps a
        batch in hand while fetching the next one (Lightning prefetches one) needs 2.
        """
        held: deque[BufferSlot] = deque()
        try:
            for slot in slots:
                held.append(slot)
                while len(held) > hold:
                    held.popleft().release()
                yield slot
        finally:
            for slot in held:
                slot.release()
