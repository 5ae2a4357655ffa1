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


@pytest.mark.parametrize("text,message", [
    ("", "predictions.csv: file is empty; expected a header 'mol_id,y_pred' and one row per test molecule"),
    ("mol_id\nm1\n", "predictions.csv: missing column(s) ['y_pred'] in header ['mol_id']; expected ['mol_id', 'y_pred'] "
                     "(+ optional y_std)"),
    ("mol_id,split,y_pred\nm1,id,1\n", "predictions.csv: has a 'split' column, which contract 2 does not allow (the test "
                                       "set is blind); write the columns mol_id,y_pred[,y_std] only"),
    ("mol_id,y_pred,extra\nm1,1,2\n", "predictions.csv: unexpected or repeated column(s) ['extra'] in header; allowed: "
                                      "mol_id, y_pred, y_std"),
    ("mol_id,y_pred\nm1,1.0\nm2\n", "predictions.csv: wrong number of fields (expected 2; truncated file?) on line 3"),
    ("mol_id,y_pred\nm1,1.0\nm2,2.5\nm3,-3", "predictions.csv: last line 4 has no line ending (truncated file?)"),
    ("mol_id,y_pred\nm1,abc\nm2,2.5\nm3,1\n", "predictions.csv: y_pred is not a number on line 2"),
    ("mol_id,y_pred\nm1,nan\nm2,inf\nm3,1\n", "predictions.csv: y_pred is NaN or infinite on lines 2, 3"),
    ("mol_id,y_pred,y_std\nm1,1,-1\nm2,2,1\nm3,1,1\n", "predictions.csv: y_std is negative on line 2"),
    ("mol_id,y_pred\nm1,1\nm1,1\nm2,2\nm3,1\n", "predictions.csv: duplicate mol_id on line 3"),
    ("mol_id,y_pred\nm1,1\nm2,2\nm3,1\nm9,1\n", "predictions.csv: mol_id not in the task's test.csv on line 5"),
])
def test_rejection_messages_word_for_word(text, message):
    """The whole line a user reads (run reason, `boom score`, `boom.evaluate`): pinned, not only a fragment."""
    assert check(text, message) == message


def test_summaries_of_many_offenders_are_exact_and_ordered():
    expected = {f"m{i}" for i in range(20)}
    with pytest.raises(PredictionsError) as err:
        validate_predictions("mol_id,y_pred\n" + "".join(f"m{i},nan\n" for i in range(20)), expected)
    assert str(err.value) == "predictions.csv: y_pred is NaN or infinite on lines 2, 3, 4, 5, 6 and 15 more"
    with pytest.raises(PredictionsError) as err:  # exactly _SHOW offenders: no "and 0 more"
        validate_predictions("mol_id,y_pred\n" + "".join(f"m{i},nan\n" for i in range(5)), {f"m{i}" for i in range(5)})
    assert str(err.value) == "predictions.csv: y_pred is NaN or infinite on lines 2, 3, 4, 5, 6"
    with pytest.raises(PredictionsError) as err:
        validate_predictions("mol_id,y_pred\nm0,1\n", {f"m{i}" for i in range(9)}, name="preds.csv")
    assert str(err.value) == "preds.csv: 8 test molecule(s) have no prediction: m1, m2, m3, m4, m5 and 3 more"
    with pytest.raises(PredictionsError) as err:  # exactly _SHOW absent: no "and 0 more"
        validate_predictions("mol_id,y_pred\nm0,1\n", {f"m{i}" for i in range(6)})
    assert str(err.value) == "predictions.csv: 5 test molecule(s) have no prediction: m1, m2, m3, m4, m5"


def test_a_file_that_is_not_utf8_is_read_and_refused_in_one_line(tmp_path: Path):
    """Bytes that are not UTF-8 (a binary dump, Latin-1) never crash the reader: they become U+FFFD and the
    file is judged like any other (here: a y_pred that is not a number), with its file name in the message."""
    path = tmp_path / "predictions.csv"
    path.write_bytes(b"mol_id,y_pred\nm0,\xff\xfe1\n")
    with pytest.raises(PredictionsError) as err:
        validate_predictions(path, {"m0"})
    assert str(err.value) == "predictions.csv: y_pred is not a number on line 2"
    with pytest.raises(PredictionsError) as err:
        validate_predictions(tmp_path / "absent.csv", {"m0"}, name="absent.csv")
    assert str(err.value) == f"absent.csv: file not found at {tmp_path / 'absent.csv'} (the model wrote no predictions)"


def test_row_model_and_split_names_of_the_contract(tmp_path: Path):
    from pydantic import ValidationError

    from boom_schema.predictions import PredictionRow, Split

    assert [s.value for s in Split] == ["id", "ood"]
    assert Split("id") is Split.ID and Split("ood") is Split.OOD
    assert PredictionRow(mol_id="m", y_pred=1.0, y_std=0.5).y_std == 0.5
    for bad in ({"y_pred": float("nan")}, {"y_pred": 1.0, "y_std": -0.1}, {"y_pred": 1.0, "y_std": float("inf")}, {}):
        with pytest.raises(ValidationError):
            PredictionRow(mol_id="m", **bad)
    table = validate_predictions(GOOD, EXPECTED)
    with pytest.raises(AttributeError):
        table.y_pred = []  # a validated table is frozen
    nested = write_predictions(tmp_path / "a" / "b" / "p.csv", ["m1"], [1.0])
    assert nested.exists()
