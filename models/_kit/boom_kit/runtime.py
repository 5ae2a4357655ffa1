"""Seeds, threads, devices, timers and library versions: the run-time hygiene every model needs."""
from __future__ import annotations

import importlib.metadata
import os
import random
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def set_threads(n: int) -> None:
    """Use at most ``n`` CPU threads (oversubscribed torch on a busy 2-core box runs 10-100x slower)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(max(1, n))
        except RuntimeError:  # already set once in this process
            pass
    except ImportError:
        pass


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when installed) torch, CPU and GPU."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:
        pass


def resolve_device(requested: str) -> str:
    """The torch device to use: 'cuda' only when the task asks for it and a GPU answers."""
    if requested == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("task asks for device 'cuda' but no CUDA GPU is visible; run with --device cpu")
        return "cuda"
    return "cpu"


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the named distributions (missing ones are left out)."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


class Stopwatch:
    """Accumulates seconds per named phase: ``with sw('train'): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
