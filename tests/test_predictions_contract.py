"""Every rejection case of the predictions contract, each with a one-line message naming the lines."""
from pathlib import Path

import pytest

from boom_schema import PredictionsError, validate_predictions
from boom_schema.predictions import write_predictions

EXPECTED = {"m1", "m2", "m3"}
GOOD = "mol_id,y_pred\nm1,1.0\nm2,2.5\nm3,-3e2\n"


def check(text: str, fragment: str) -> str:
    with pytest.raises(PredictionsError) as err:
        validate_predictions(text, EXPECTED)
    msg = str(err.value)
    assert "\n" not in msg, "messages must be one line"
    assert fragment in msg, msg
    return msg


def test_valid_predictions_parse_in_order():
    table = validate_predictions(GOOD, EXPECTED)
    assert table.mol_id == ["m1", "m2", "m3"]
    assert table.y_pred == [1.0, 2.5, -300.0]
    assert table.y_std is None


def test_valid_with_std_and_any_row_order():
    t = validate_predictions("mol_id,y_pred,y_std\nm3,1,0.5\nm1,1,0\nm2,2,1e-3\n", EXPECTED)
    assert t.y_std == [0.5, 0.0, 0.001]


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("   \n", "empty"),
    ("mol_id\nm1\n", "missing column(s) ['y_pred']"),
    ("mol_id,split,y_pred\nm1,id,1\nm2,id,2\nm3,ood,1\n", "has a 'split' column, which contract 2 does not allow"),
    ("mol_id,y_pred,extra\nm1,1,2\n", "unexpected or repeated column"),
    ("mol_id,y_pred\nm1,1.0\nm2\n", "wrong number of fields"),
    ("mol_id,y_pred\nm1,1.0\nm2,2.5\nm3,-3", "no line ending"),
    ("mol_id,y_pred\nm1,abc\nm2,2.5\nm3,1\n", "y_pred is not a number on line 2"),
    ("mol_id,y_pred\nm1,nan\nm2,inf\nm3,1\n", "NaN or infinite on lines 2, 3"),
    ("mol_id,y_pred,y_std\nm1,1,-1\nm2,2,1\nm3,1,1\n", "y_std is negative on line 2"),
    ("mol_id,y_pred,y_std\nm1,1,nan\nm2,2,1\nm3,1,1\n", "y_std is NaN or infinite on line 2"),
    ("mol_id,y_pred\nm1,1\nm1,1\nm2,2\nm3,1\n", "duplicate mol_id on line 3"),
    ("mol_id,y_pred\nm1,1\nm2,2\nm3,1\nm9,1\n", "mol_id not in the task's test.csv on line 5"),
    ("mol_id,y_pred\nm1,1\nm3,1\n", "1 test molecule(s) have no prediction: m2"),
])
def test_rejections(text, fragment):
    check(text, fragment)


def test_many_offenders_are_summarised():
    rows = "".join(f"m{i},nan\n" for i in range(20))
    expected = {f"m{i}" for i in range(20)}
    with pytest.raises(PredictionsError, match=r"lines 2, 3, 4, 5, 6 and 15 more"):
        validate_predictions("mol_id,y_pred\n" + rows, expected)


def test_missing_file(tmp_path: Path):
    with pytest.raises(PredictionsError, match="file not found"):
        validate_predictions(tmp_path / "predictions.csv", EXPECTED)


def test_writer_round_trips_full_precision(tmp_path: Path):
    path = write_predictions(tmp_path / "p.csv", ["m1", "m2", "m3"], [0.1 + 0.2, 1 / 3, 2.0], [0.0, 1.0, 2.0])
    table = validate_predictions(path, EXPECTED)
    assert table.y_pred[0] == 0.1 + 0.2 and table.y_pred[1] == 1 / 3
