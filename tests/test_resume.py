"""Resume: the next matrix reruns a failed and a timed-out cell, and leaves an ok cell alone.

Uses the ``flaky`` fixture model (tests/fixtures/models/flaky): a cell misbehaves on its first call only, and
every call is counted in a file outside the run folder, so "skipped" is checked by the model's own count,
not only by what the matrix says.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"


def _calls(marker: Path) -> Counter:
    return Counter((marker / "calls.txt").read_text().split())


def test_failed_and_timed_out_cells_are_rerun_ok_cells_are_not(prepared, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import matrix
    from boom.options import RunOptions
    from boom.runners.local import LocalRunner

    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    monkeypatch.setenv("BOOM_RESULTS_DIR", str(tmp_path / "results"))
    marker = tmp_path / "marker"
    marker.mkdir()
    cells = matrix.cells(["flaky"], ["density", "hof", "mu"], [0])
    sets = {"fail_once": "density", "hang_once": "hof", "marker": str(marker)}

    def run_all() -> dict[str, matrix.CellResult]:
        out = matrix.run_matrix(cells, LocalRunner(), RunOptions(overrides=sets, subset=40, timeout_s=3, threads=1),
                                echo=lambda _: None)
        return {r.cell.prop: r for r in out}

    first = run_all()
    assert {p: r.status for p, r in first.items()} == {"density": "failed", "hof": "timeout", "mu": "ok"}
    assert "first call fails on purpose" in first["density"].reason
    assert _calls(marker) == {"density-0": 1, "hof-0": 1, "mu-0": 1}

    second = run_all()
    assert {p: (r.status, r.skipped) for p, r in second.items()} == {
        "density": ("ok", False), "hof": ("ok", False), "mu": ("ok", True)}
    assert _calls(marker) == {"density-0": 2, "hof-0": 2, "mu-0": 1}  # the ok cell's model was not started
    for prop in ("density", "hof"):  # the same run folder; the failed attempt kept under previous/
        folder = Path(second[prop].folder)
        assert folder == Path(first[prop].folder)
        assert list(folder.glob("previous/*/record.json")), f"{prop}: the failed attempt was not kept"

    third = run_all()
    assert all(r.status == "ok" and r.skipped for r in third.values())
    assert _calls(marker) == {"density-0": 2, "hof-0": 2, "mu-0": 1}
