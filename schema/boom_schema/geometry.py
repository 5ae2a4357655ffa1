"""The geometry file, both directions: ``geometries.extxyz``, one extended-XYZ frame per molecule.

Each frame is an atom count, a comment line ``Properties=species:S:1:pos:R:3 mol_id=<id> pbc="F F F"`` and
one ``<element> <x> <y> <z>`` line per atom (Angstrom, 8 decimals), so ASE reads the file too
(``ase.io.read(path, ':')``).  :class:`Geometry` is the one type for a molecule's atoms on both sides: the
orchestrator writes it (:func:`write_extxyz`), models read it (:func:`read_extxyz`; ``boom_kit.geometry``
gives the positions as a numpy array).  A malformed file is refused with one line naming the file, the line
and the problem: a bad atom count, a frame without mol_id, a repeated mol_id, an unknown element, a
coordinate that is not a finite number, a truncated frame.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

# Full element table of both datasets (CHNO for 10k_csd, CHNOF for QM9): an OOD molecule with an element
# unseen in train must not crash a model.
ELEMENTS = ("H", "C", "N", "O", "F")
ATOMIC_NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
COMMENT = 'Properties=species:S:1:pos:R:3 mol_id={mol_id} pbc="F F F"'
_MOL_ID = re.compile(r"(?:^|\s)mol_id=(\S+)")


class GeometryFileError(ValueError):
    """A malformed geometry file or geometry; ``str(error)`` is one line."""


class Geometry(NamedTuple):
    """The atoms of one molecule: element symbols and their positions, in the same order.

    ``positions`` holds (x, y, z) rows in Angstrom: tuples of floats as :func:`read_extxyz` returns them, or
    an ``(n_atoms, 3)`` numpy array (``boom_kit.geometry.read_extxyz``).  A tuple, so
    ``symbols, positions = geometry`` works.
    """

    symbols: tuple[str, ...]
    positions: Any

    @property
    def atomic_numbers(self) -> tuple[int, ...]:
        return tuple(ATOMIC_NUMBERS[s] for s in self.symbols)

    @property
    def element_index(self) -> tuple[int, ...]:
        """Index into :data:`ELEMENTS` (for one-hot features)."""
        return tuple(ELEMENTS.index(s) for s in self.symbols)


def frame_text(mol_id: str, geom: Geometry) -> str:
    """One frame of the file (also the per-molecule conformer cache's format)."""
    if not mol_id or any(c.isspace() for c in mol_id):
        raise GeometryFileError(f"mol_id {mol_id!r} is empty or has white space; it cannot be written to a comment line")
    if len(geom.symbols) != len(geom.positions) or not geom.symbols:
        raise GeometryFileError(f"molecule {mol_id}: {len(geom.symbols)} elements but {len(geom.positions)} positions")
    unknown = sorted(set(geom.symbols) - set(ELEMENTS))
    if unknown:
        raise GeometryFileError(f"molecule {mol_id}: elements {unknown} outside {ELEMENTS}")
    lines = [str(len(geom.symbols)), COMMENT.format(mol_id=mol_id)]
    lines += [f"{s} {x:.8f} {y:.8f} {z:.8f}" for s, (x, y, z) in zip(geom.symbols, geom.positions)]
    return "\n".join(lines) + "\n"


def write_extxyz(path: str | Path, items: Iterable[tuple[str, Geometry]]) -> int:
    """Write frames ``(mol_id, geometry)`` to one file (replaced whole at the end); returns the frame count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    n = 0
    seen: set[str] = set()
    try:
        with tmp.open("w") as fh:
            for mol_id, geom in items:
                if mol_id in seen:
                    raise GeometryFileError(f"{path.name}: mol_id {mol_id} given twice")
                seen.add(mol_id)
                fh.write(frame_text(mol_id, geom))
                n += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return n


def parse_extxyz(text: str, name: str = "geometries.extxyz") -> dict[str, Geometry]:
    """Frames of extended-XYZ text keyed by mol_id (positions as tuples); errors name ``name`` and the line."""
    out: dict[str, Geometry] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i])
        except ValueError:
            raise GeometryFileError(f"{name}: line {i + 1} should be an atom count, got {lines[i][:40]!r}") from None
        if n < 1:
            raise GeometryFileError(f"{name}: line {i + 1}: atom count {n} (a frame needs at least one atom)")
        if i + 2 + n > len(lines):
            raise GeometryFileError(f"{name}: frame at line {i + 1} has {n} atoms but the file ends after "
                                    f"{max(0, len(lines) - i - 2)} (truncated file?)")
        m = _MOL_ID.search(lines[i + 1])
        if m is None:
            raise GeometryFileError(f"{name}: frame at line {i + 1} has no mol_id=... in its comment line")
        mol_id = m.group(1)
        if mol_id in out:
            raise GeometryFileError(f"{name}: line {i + 2}: mol_id {mol_id} appears in two frames")
        symbols, coords = [], []
        for k in range(i + 2, i + 2 + n):
            parts = lines[k].split()
            if len(parts) < 4:
                raise GeometryFileError(f"{name}: line {k + 1}: expected '<element> <x> <y> <z>', got {lines[k][:60]!r}")
            if parts[0] not in ATOMIC_NUMBERS:
                raise GeometryFileError(f"{name}: line {k + 1}: molecule {mol_id} has element {parts[0]!r} outside "
                                        f"{ELEMENTS}")
            try:
                xyz = (float(parts[1]), float(parts[2]), float(parts[3]))
            except ValueError:
                raise GeometryFileError(f"{name}: line {k + 1}: a coordinate is not a number") from None
            if not all(math.isfinite(v) for v in xyz):
                raise GeometryFileError(f"{name}: line {k + 1}: a coordinate is NaN or infinite")
            symbols.append(parts[0])
            coords.append(xyz)
        out[mol_id] = Geometry(tuple(symbols), tuple(coords))
        i += 2 + n
    return out


def read_extxyz(path: str | Path) -> dict[str, Geometry]:
    """All frames of a geometry file, keyed by mol_id (no ASE needed)."""
    path = Path(path)
    if not path.is_file():
        raise GeometryFileError(f"{path.name}: file not found at {path} (does the task have geometries?)")
    return parse_extxyz(path.read_text(), path.name)
