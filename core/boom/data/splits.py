"""BOOM's OOD splits, reproduced exactly and computed fast.

For each property: a 1-D Gaussian kernel density over all values with bandwidth ``n ** (-1/5)`` in the
property's raw units (scikit-learn's ``bandwidth="scott"``, which is not scaled by the spread); the k
molecules of lowest density are OOD.  Every other molecule goes to the ID test set when a draw of
``random.Random(42).random()`` is < 0.05, else to train.

One deliberate deviation from BOOM: BOOM took the k lowest as ``numpy.argpartition(density, k)[:k]``, which
settles ties at the boundary differently by numpy version and CPU (SIMD selection paths).  On QM9's alpha,
homo, lumo, gap and cv 11, 35, 51, 31 and 5 molecules share the boundary density, three machines/numpy
versions gave three OOD sets, and one swapped molecule shifts the shared random stream, moving about
5,000-11,000 molecules between train and ID.  Here the OOD set is the first k of a *stable* sort of the
densities (ties broken by molecule order), with densities compared at 36 significant bits so that
last-bit differences of floating-point summation between machines cannot reorder them.  On 10k_csd and on
mu, r2 and zpve there are no boundary ties and nothing changes; the pinned digests (``boom.data.pinned``)
make any difference on any machine an error instead of a silent other benchmark.

The density is computed exactly (every pair whose kernel value is not negligible next to float64
rounding) but over unique values with their multiplicities and a sorted sliding window, so tied values
get bit-identical densities and the 8 QM9 properties take seconds instead of BOOM's 88 minutes.
"""
from __future__ import annotations

import hashlib
import math
import random
from typing import Mapping, Sequence

import numpy as np

ID_FRACTION = 0.05
SPLIT_SEED = 42
# exp(-0.5 * 12**2) = 5e-32: past 12 bandwidths a pair adds < 1e-26 relative to any density here.
_CUTOFF_BANDWIDTHS = 12.0
_BLOCK_CELLS = 4_000_000
_BLOCK_TO_WINDOW = 8  # a block at most 1/8 of its window: <= ~1.25x the interacting pairs are evaluated
_DIRECT_PAIRS = 300_000_000  # above this many interacting pairs, use the Taylor expansion
_TAYLOR_TERMS = 48  # |t*s| <= 6.25: the series is below 1e-17 of its sum well before 48 terms


def scott_bandwidth(n: int) -> float:
    """scikit-learn's 'scott' rule for one dimension: n ** (-1 / (d + 4)) with d = 1, unscaled."""
    return float(n) ** (-1.0 / 5.0)


def kde_density(values: Sequence[float], bandwidth: float | None = None) -> np.ndarray:
    """Gaussian KDE of ``values`` evaluated at every value (what sklearn's exp(score_samples) gives).

    Sums run over unique values weighted by their multiplicity.  Where few pairs lie within 12
    bandwidths the kernel is summed directly; where the bandwidth is wide next to the spread of the
    values (QM9's zpve: every pair interacts), the same sums are taken through a Taylor (fast Gauss)
    expansion around 1-bandwidth clusters, accurate to about 1e-14 relative, like the direct sums.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return np.zeros(0)
    h = scott_bandwidth(n) if bandwidth is None else float(bandwidth)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    weights = counts.astype(np.float64)
    cut = _CUTOFF_BANDWIDTHS * h
    pairs = int((np.searchsorted(uniq, uniq + cut, "right") - np.searchsorted(uniq, uniq - cut, "left")).sum())
    sums = _direct_sums(uniq, weights, h) if pairs <= _DIRECT_PAIRS else _taylor_sums(uniq, weights, h)
    log_norm = -math.log(n) - math.log(h) - 0.5 * math.log(2 * math.pi)
    return np.exp(np.log(sums) + log_norm)[inverse]


def _direct_sums(uniq: np.ndarray, weights: np.ndarray, h: float) -> np.ndarray:
    """sum_j w_j exp(-(u_i - u_j)^2 / 2h^2) over sorted windows of +-12 bandwidths, in blocks."""
    cut = _CUTOFF_BANDWIDTHS * h
    sums = np.empty(uniq.size)
    start = 0
    while start < uniq.size:
        lo = np.searchsorted(uniq, uniq[start] - cut, side="left")
        stop = min(start + 64, uniq.size)  # 64 rows at least: a block costs ~30 us of overhead
        while stop < uniq.size:  # grow the block while block x window stays within the cell budget
            nxt = min(stop + 64, uniq.size)
            hi = np.searchsorted(uniq, uniq[nxt - 1] + cut, side="right")
            # a block as long as its window computes about twice the pairs that interact (r2: 7x at 4M cells)
            if (nxt - start) * (hi - lo) > _BLOCK_CELLS or (nxt - start) * _BLOCK_TO_WINDOW > hi - lo:
                break
            stop = nxt
        hi = np.searchsorted(uniq, uniq[stop - 1] + cut, side="right")
        diff = (uniq[start:stop, None] - uniq[None, lo:hi]) / h
        sums[start:stop] = np.exp(-0.5 * diff**2) @ weights[lo:hi]
        start = stop
    return sums


def _taylor_sums(uniq: np.ndarray, weights: np.ndarray, h: float) -> np.ndarray:
    """The same sums by a Taylor expansion of exp(t*s) around the centre of each 1-bandwidth cluster.

    exp(-(t - s)^2 / 2) = exp(-t^2/2) * sum_k t^k / k! * [exp(-s^2/2) s^k], with s (|s| <= 1/2) the
    source's offset from the cluster centre and t the target's, both in bandwidths.
    """
    z = (uniq - uniq[0]) / h
    cluster = np.floor(z).astype(np.int64)
    bounds = np.flatnonzero(np.diff(cluster)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [z.size]])
    factorial = np.array([math.factorial(k) for k in range(_TAYLOR_TERMS)], dtype=np.float64)
    sums = np.zeros(uniq.size)
    for a, b in zip(starts, stops):
        centre = cluster[a] + 0.5
        s = z[a:b] - centre
        src = weights[a:b] * np.exp(-0.5 * s**2)
        coef = np.array([(src * s**k).sum() for k in range(_TAYLOR_TERMS)]) / factorial
        lo = np.searchsorted(z, centre - _CUTOFF_BANDWIDTHS - 0.5, side="left")
        hi = np.searchsorted(z, centre + _CUTOFF_BANDWIDTHS + 0.5, side="right")
        t = z[lo:hi] - centre
        poly = np.full(t.size, coef[-1])
        for c in coef[-2::-1]:  # Horner
            poly = poly * t + c
        sums[lo:hi] += np.exp(-0.5 * t**2) * poly
    return sums


_KEY_BITS = 36  # densities are compared at 36 significant bits (~1.5e-11 relative)


def portable_key(density: np.ndarray) -> np.ndarray:
    """Densities rounded to ``_KEY_BITS`` significant bits: equal on every machine to far below their accuracy.

    The direct sums agree with scikit-learn to ~1e-14 relative; summation order (BLAS kernels) can change
    the last bits from one CPU to another, which must never reorder two molecules.
    """
    mantissa, exponent = np.frexp(np.asarray(density, dtype=np.float64))
    return np.ldexp(np.round(mantissa * 2.0**_KEY_BITS), exponent - _KEY_BITS)


def lowest_k(density: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k lowest densities, ties broken by molecule order: the same set on every machine."""
    if not 0 < k < density.size:
        raise ValueError(f"cannot take {k} OOD molecules out of {density.size}")
    return np.argsort(portable_key(density), kind="stable")[:k]


def ood_mask(values: Sequence[float], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(boolean OOD mask, densities): the k lowest-density molecules under the portable tie rule."""
    density = kde_density(values)
    mask = np.zeros(density.size, dtype=bool)
    mask[lowest_k(density, k)] = True
    return mask, density


def split_digest(mol_ids: Sequence[str], assignment: Sequence[str]) -> str:
    """sha256 of the sorted ``mol_id,split`` lines (one per molecule, '\n'-joined): the split's identity."""
    lines = sorted(f"{m},{s}" for m, s in zip(mol_ids, assignment))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def boundary_ties(density: np.ndarray, k: int) -> int:
    """How many molecules share one density across the OOD boundary (0 when the k-th and (k+1)-th differ).

    These are the molecules among which BOOM's argpartition chose differently by machine.
    """
    key = portable_key(density)
    ordered = np.sort(key)
    if ordered[k - 1] != ordered[k]:
        return 0
    return int((key == ordered[k - 1]).sum())


def assign_shared_stream(ood: Mapping[str, np.ndarray], order: Sequence[str]) -> dict[str, np.ndarray]:
    """10k_csd: one Random(42) stream over molecules in file order, properties in ``order`` per molecule.

    A draw happens only when the molecule is not OOD for that property.
    """
    rng = random.Random(SPLIT_SEED)
    n = len(next(iter(ood.values())))
    out = {p: np.empty(n, dtype=object) for p in order}
    for i in range(n):
        for p in order:
            if ood[p][i]:
                out[p][i] = "ood"
            else:
                out[p][i] = "id" if rng.random() < ID_FRACTION else "train"
    return out


def assign_per_property(ood: np.ndarray) -> np.ndarray:
    """qm9: Random re-seeded with 42 for each property, walking the molecules in QM9 index order."""
    rng = random.Random(SPLIT_SEED)
    ood = np.asarray(ood, dtype=bool)
    rest = np.flatnonzero(~ood)  # one draw per non-OOD molecule, in index order
    draws = np.fromiter((rng.random() for _ in range(rest.size)), dtype=np.float64, count=rest.size)
    out = np.full(ood.size, "ood", dtype=object)
    out[rest] = np.where(draws < ID_FRACTION, "id", "train").astype(object)
    return out
