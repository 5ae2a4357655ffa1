"""The input tables and the geometry file through boom_schema, both directions: what the orchestrator writes
reads back exactly, and a malformed file is refused with one line naming the file, the line and the problem."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from boom_schema import (Geometry, GeometryFileError, InputFileError, read_extxyz, read_test, read_train, write_extxyz,
                         write_test, write_train)
from boom_schema.geometry import parse_extxyz


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_train_round_trip_is_exact(tmp_path: Path) -> None:
    ys = [0.1, 1 / 3, -2.5e-300, 1e308, 5e-324, 2.220446049250313e-16, 123456789.123456789]
    ids = [f"m{i}" for i in range(len(ys))]
    smiles = ["C", "CCO", "c1ccccc1", "N#N", "O=C=O", 'C"C', "C,C"]  # quote and comma are quoted by csv
    path = write_train(tmp_path / "train.csv", ids, smiles, ys)
    table = read_train(path)
    assert table.mol_id == ids and table.smiles == smiles
    assert [v.hex() for v in table.y] == [float(v).hex() for v in ys], "labels read back bit for bit"
    assert path.read_text().splitlines()[0] == "mol_id,smiles,y"


def test_test_round_trip_keeps_order_and_has_no_label(tmp_path: Path) -> None:
    ids, smiles = ["b", "a", "c"], ["CC", "C", "CCC"]
    path = write_test(tmp_path / "test.csv", ids, smiles)
    table = read_test(path)
    assert (table.mol_id, table.smiles, table.y) == (ids, smiles, None)
    assert path.read_text() == "mol_id,smiles\nb,CC\na,C\nc,CCC\n"


@pytest.mark.parametrize("text, fragment", [
    ("mol_id,y\na,1.0\n", "missing column(s) ['smiles']"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC,nan\n", "label y is NaN or infinite on line 3"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC,\n", "label y is NaN or infinite on line 3"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC,heavy\n", "label y is not a number on line 3"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC,2.0\na,CCC,3.0\n", "duplicate mol_id on line 4"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC\n", "wrong number of fields"),
    ("mol_id,smiles,y\na,C,1.0\nb,CC,2.0", "no line ending"),
    ("mol_id,smiles,y\n,C,1.0\n", "empty mol_id on line 2"),
    ("mol_id,smiles,y\na,,1.0\n", "empty smiles on line 2"),
    ("", "file is empty"),
])
def test_bad_train_files_are_refused_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(InputFileError) as exc:
        read_train(text, name="train.csv")
    msg = _one_line(exc)
    assert msg.startswith("train.csv: ") and fragment in msg, msg


@pytest.mark.parametrize("text, fragment", [
    ("mol_id,smiles,y\na,C,1.0\n", "unexpected or repeated column(s) ['y']"),  # a label in the blind file
    ("mol_id,smiles,split\na,C,ood\n", "unexpected or repeated column(s) ['split']"),
    ("mol_id\na\n", "missing column(s) ['smiles']"),
    ("mol_id,smiles\na,C\na,CC\n", "duplicate mol_id on line 3"),
])
def test_bad_test_files_are_refused_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(InputFileError) as exc:
        read_test(text, name="test.csv")
    msg = _one_line(exc)
    assert msg.startswith("test.csv: ") and fragment in msg, msg


def test_writers_refuse_what_the_readers_would(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="NaN or infinite on line 3"):
        write_train(tmp_path / "train.csv", ["a", "b"], ["C", "CC"], [1.0, math.nan])
    with pytest.raises(InputFileError, match="duplicate mol_id on line 3"):
        write_test(tmp_path / "test.csv", ["a", "a"], ["C", "CC"])
    assert not (tmp_path / "train.csv").exists() and not (tmp_path / "test.csv").exists()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="train.csv: file not found at"):
        read_train(tmp_path / "train.csv")


WATER = Geometry(("O", "H", "H"), ((0.0, 0.0, 0.11730), (0.0, 0.75720, -0.46920), (0.0, -0.75720, -0.46920)))
METHANE = Geometry(("C", "H", "H", "H", "H"), ((0.0, 0.0, 0.0), (0.629, 0.629, 0.629), (-0.629, -0.629, 0.629),
                                              (-0.629, 0.629, -0.629), (0.629, -0.629, -0.629)))


def test_geometry_round_trip_and_ase(tmp_path: Path) -> None:
    path = tmp_path / "geometries.extxyz"
    assert write_extxyz(path, [("w1", WATER), ("ch4", METHANE)]) == 2
    back = read_extxyz(path)
    assert list(back) == ["w1", "ch4"]
    assert back["w1"] == WATER and back["ch4"] == METHANE  # 8 decimals: these values are exact
    assert back["ch4"].atomic_numbers == (6, 1, 1, 1, 1) and back["w1"].element_index == (3, 0, 0)
    symbols, positions = back["w1"]  # a tuple: unpacks like the (symbols, coords) pairs of before
    assert symbols == ("O", "H", "H") and len(positions) == 3
    ase_io = pytest.importorskip("ase.io")
    frames = ase_io.read(path, ":")
    assert [f.info["mol_id"] for f in frames] == ["w1", "ch4"]
    assert frames[1].get_chemical_symbols() == list(METHANE.symbols)


def test_kit_reads_the_same_geometry_type_with_numpy_positions(tmp_path: Path) -> None:
    import numpy as np

    from boom_kit import geometry as kit_geometry

    path = tmp_path / "geometries.extxyz"
    write_extxyz(path, [("w1", WATER)])
    g = kit_geometry.read_extxyz(path)["w1"]
    assert type(g) is Geometry and kit_geometry.Geometry is Geometry
    assert isinstance(g.positions, np.ndarray) and g.positions.shape == (3, 3) and g.positions.dtype == np.float64
    np.testing.assert_array_equal(g.positions, np.array(WATER.positions))


FRAME = '3\nProperties=species:S:1:pos:R:3 mol_id={id} pbc="F F F"\nO 0 0 0.1\nH 0 0.75 -0.4\nH 0 -0.75 -0.4\n'


@pytest.mark.parametrize("text, fragment", [
    (FRAME.format(id="a") + FRAME.format(id="a"), "line 7: mol_id a appears in two frames"),
    (FRAME.format(id="a").replace("mol_id=a ", ""), "frame at line 1 has no mol_id"),
    (FRAME.format(id="a").replace("H 0 0.75", "Cl 0 0.75"), "line 4: molecule a has element 'Cl'"),
    (FRAME.format(id="a").replace("0.75 -0.4", "nan -0.4", 1), "line 4: a coordinate is NaN or infinite"),
    (FRAME.format(id="a").replace("0.75 -0.4", "x -0.4", 1), "line 4: a coordinate is not a number"),
    (FRAME.format(id="a").replace("H 0 -0.75 -0.4\n", ""), "has 3 atoms but the file ends after 2"),
    ("three\n" + FRAME.format(id="a")[2:], "line 1 should be an atom count"),
    (FRAME.format(id="a").replace("O 0 0 0.1", "O 0 0"), "line 3: expected '<element> <x> <y> <z>'"),
])
def test_bad_geometry_files_are_refused_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(GeometryFileError) as exc:
        parse_extxyz(text, "geometries.extxyz")
    msg = _one_line(exc)
    assert msg.startswith("geometries.extxyz: ") and fragment in msg, msg


def test_geometry_writer_refuses_bad_frames(tmp_path: Path) -> None:
    path = tmp_path / "g.extxyz"
    with pytest.raises(GeometryFileError, match="given twice"):
        write_extxyz(path, [("a", WATER), ("a", METHANE)])
    with pytest.raises(GeometryFileError, match="3 elements but 2 positions"):
        write_extxyz(path, [("a", Geometry(WATER.symbols, WATER.positions[:2]))])
    with pytest.raises(GeometryFileError, match="white space"):
        write_extxyz(path, [("a b", WATER)])
    assert not path.exists() and not path.with_suffix(".part").exists()
