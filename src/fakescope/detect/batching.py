"""Dynamic batching: model calls from concurrent analyses merged into one forward.

A service answering many small requests (face photos: one or two crops each) spends most
of a model call on fixed per-call costs. `DynamicBatcher` wraps a model (torch or ONNX
Runtime, anything called with an (N, C, H, W) tensor that returns `{"prob", "logits"}`)
and is called exactly like it: a call waits up to `max_wait_ms` for calls from other
threads, the pending inputs are concatenated and run as one forward of at most `max_batch`
rows, and each caller gets back its own rows. A call only waits while another analysis
(`analysis()`, one per file on its own thread) has not made its first call yet, so a lone
analysis pays no latency and a full batch never waits for the window to close.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

Model = Callable[[torch.Tensor], dict[str, torch.Tensor]]
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_BATCH = 64


@dataclass
class _Call:
    inputs: torch.Tensor
    done: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, torch.Tensor] | None = None
    error: BaseException | None = None


class DynamicBatcher:
    """Callable like `model`; concurrent calls share forwards. `forwards` and `calls` count what happened."""

    def __init__(self, model: Model, *, max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.model = model
        self.max_wait = max_wait_ms / 1000.0
        self.max_batch = max_batch
        self.forwards = 0
        self.calls = 0
        self._lock = threading.Condition()
        self._pending: list[_Call] = []
        self._running = False
        self._awaited = 0
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        """Everything but the call is the wrapped model's (pretrained_cfg, device, parameters, ...)."""
        try:
            model = self.__dict__["model"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(model, name)

    def eval(self) -> DynamicBatcher:
        self.model.eval()  # type: ignore[attr-defined]
        return self

    @contextmanager
    def analysis(self) -> Iterator[None]:
        """One file's analysis on this thread: until its first call, other calls may wait for it."""
        with self._lock:
            self._awaited += 1
        self._local.awaited = True
        try:
            yield
        finally:
            with self._lock:
                self._first_call_made()

    def _first_call_made(self) -> None:
        if getattr(self._local, "awaited", False):
            self._local.awaited = False
            self._awaited -= 1
            self._lock.notify_all()

    def __call__(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        call = _Call(inputs)
        with self._lock:
            self._pending.append(call)
            self.calls += 1
            self._first_call_made()
            self._lock.notify_all()
            if self._running:
                leader = False
            else:
                self._running = leader = True
        if leader:
            self._lead()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.outputs is not None
        return call.outputs

    def _lead(self) -> None:
        """Run batches until nothing is pending; the leader is whichever caller found no batch running."""
        while True:
            with self._lock:
                deadline = time.monotonic() + self.max_wait
                while self._awaited > 0 and self._rows() < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._lock.wait(left)
                batch = self._take()
                if not batch:
                    self._running = False
                    return
            self._run(batch)

    def _rows(self) -> int:
        return sum(len(c.inputs) for c in self._pending)

    def _take(self) -> list[_Call]:
        """Pending calls in arrival order up to `max_batch` rows (always at least one call)."""
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0].inputs) <= self.max_batch):
            call = self._pending.pop(0)
            batch.append(call)
            rows += len(call.inputs)
        return batch

    def _run(self, batch: list[_Call]) -> None:
        try:
            merged = self.model(torch.cat([c.inputs for c in batch]) if len(batch) > 1 else batch[0].inputs)
            self.forwards += 1
            start = 0
            for call in batch:
                end = start + len(call.inputs)
                call.outputs = {k: v[start:end] for k, v in merged.items()}
                start = end
        except Exception as err:  # noqa: BLE001 - handed to every caller of the batch, raised in its own thread
            for call in batch:
                call.error = err
        finally:
            for call in batch:
                call.done.set()


@contextmanager
def analysis_of(*models: object) -> Iterator[None]:
    """`DynamicBatcher.analysis()` of each batched model among `models` (plain models are skipped)."""
    with ExitStack() as stack:
        for model in models:
            if isinstance(model, DynamicBatcher):
                stack.enter_context(model.analysis())
        yield
