"""The shared atom-level SMILES tokenizer: round trips, train-only vocabulary, [UNK] mapping, strict loading."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from boom_kit.checkpoints import CheckpointError, check_loading_info
from boom_kit.tokenize import (
    CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK, build_vocab, fit_tokenizer, load_vocab, make_tokenizer, split_smiles,
    unknown_fraction,
)


@pytest.fixture(scope="module")
def molecules(prepared):
    csd = pd.read_csv(prepared["data"] / "10k_csd" / "molecules.csv", dtype={"mol_id": str})
    qm9 = pd.read_csv(prepared["data"] / "qm9" / "molecules.csv", dtype={"mol_id": str})
    return csd, qm9


def test_hand_cases():
    assert split_smiles("CC(C)[N+](=O)[O-]") == ["C", "C", "(", "C", ")", "[N+]", "(", "=", "O", ")", "[O-]"]
    assert split_smiles("c1cc[nH]c1N(=O)=O") == ["c", "1", "c", "c", "[nH]", "c", "1", "N", "(", "=", "O", ")", "=", "O"]
    assert split_smiles("ClC%12CCBr.C%12") == ["Cl", "C", "%12", "C", "C", "Br", ".", "C", "%12"]
    assert split_smiles("[C@@H](F)(Cl)/C=C\\O") == ["[C@@H]", "(", "F", ")", "(", "Cl", ")", "/", "C", "=", "C", "\\", "O"]
    with pytest.raises(ValueError):
        split_smiles("CC{x}")


def test_round_trip_on_real_smiles(molecules):
    csd, qm9 = molecules
    smiles = list(csd["smiles"]) + list(qm9["smiles"].sample(20000, random_state=0))
    for s in smiles:
        assert "".join(split_smiles(s)) == s
    # the Hugging Face tokenizer built from them decodes its ids back to the SMILES
    tok = fit_tokenizer(smiles)
    sample = list(csd["smiles"].iloc[::50]) + list(qm9["smiles"].iloc[::500])
    enc = tok(sample)["input_ids"]
    assert all(ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id for ids in enc)
    assert [tok.decode(ids, skip_special_tokens=True) for ids in enc] == sample
    assert unknown_fraction(tok, sample) == 0.0
    # nitro groups in both spellings are ordinary tokens
    assert {"[N+]", "[O-]"} <= set(tok.get_vocab())


def test_vocab_from_train_only(molecules, prepared, tmp_path):
    csd, _ = molecules
    splits = pd.read_csv(prepared["data"] / "10k_csd" / "splits" / "density.csv", dtype={"mol_id": str})
    df = csd.merge(splits, on="mol_id")
    train = df[df["split"] == "train"]["smiles"]
    rest = df[df["split"] != "train"]["smiles"]
    vocab_path = tmp_path / "vocab.json"
    tok = fit_tokenizer(list(train), vocab_path)
    vocab = load_vocab(vocab_path)
    assert vocab == tok.get_vocab()
    assert list(vocab)[:5] == list(SPECIAL_TOKENS) and [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    train_tokens = {t for s in train for t in split_smiles(s)}
    assert set(vocab) - set(SPECIAL_TOKENS) == train_tokens
    # a token seen only outside train is not in the vocabulary
    only_test = {t for s in rest for t in split_smiles(s)} - train_tokens
    assert not (only_test & set(vocab))
    # deterministic: same train split, same ids
    assert build_vocab(list(train)) == vocab


def test_unknown_tokens_map_to_unk():
    tok = make_tokenizer(build_vocab(["CC(O)C", "c1ccccc1"]))
    ids = tok("CC[N+](Cl)O", add_special_tokens=False)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks == ["C", "C", UNK, "(", UNK, ")", "O"]
    assert tok.pad_token == PAD and tok.mask_token == MASK and tok.cls_token == CLS and tok.sep_token == SEP
    batch = tok(["CCO", "C"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 5) and int(batch["attention_mask"][1].sum()) == 3
    assert batch["input_ids"][1, -1].item() == tok.pad_token_id == 0


def test_tokenizer_save_and_reload(tmp_path):
    from transformers import AutoTokenizer

    tok = make_tokenizer(build_vocab(["CC[N+](=O)[O-]", "c1ccncc1Cl"]))
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    s = "Clc1ccncc1[N+](=O)[O-]"
    assert again(s)["input_ids"] == tok(s)["input_ids"]
    assert json.loads((tmp_path / "tokenizer.json").read_text())["model"]["type"] == "WordLevel"


def test_check_loading_info_is_strict():
    ok = {"missing_keys": set(), "unexpected_keys": {"lm_head.bias"}, "mismatched_keys": set(), "error_msgs": []}
    assert check_loading_info("x", ok, allowed_unexpected=("lm_head.",)) == ["lm_head.bias"]
    with pytest.raises(CheckpointError, match="unexpected"):
        check_loading_info("x", ok)
    with pytest.raises(CheckpointError, match="missing"):
        check_loading_info("x", {"missing_keys": {"a.weight"}})
    with pytest.raises(CheckpointError, match="wrong shape"):
        check_loading_info("x", {"mismatched_keys": {("a.weight", (2, 2), (3, 3))}})


def test_package_checkpoints_resolve_or_fail_clearly(tmp_path):
    from boom_kit.checkpoints import CheckpointError, checkpoint_label, load_tokenizer, resolve_checkpoint

    assert resolve_checkpoint("/some/folder") == ("/some/folder", "/some/folder")
    with pytest.raises(CheckpointError, match="not installed"):
        resolve_checkpoint("pkg:no_such_package_xyz/models")
    with pytest.raises(CheckpointError, match="no folder"):
        resolve_checkpoint("pkg:boom_kit/no/such/folder")
    path, label = resolve_checkpoint("pkg:boom_kit/featurise")
    assert path.endswith("boom_kit/featurise") and label.startswith("pkg:boom_kit/featurise (boom_kit ")
    assert checkpoint_label("pkg:boom_kit/featurise") == label
    # a vocab.txt-only checkpoint gets the SMILES tokenizer with the file's ids; a non-SMILES vocab is refused
    (tmp_path / "smiles").mkdir()
    (tmp_path / "smiles" / "vocab.txt").write_text("\n".join(["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                                "c", "C", "(", ")", "=", "O", "1"]))
    tok = load_tokenizer(str(tmp_path / "smiles"))
    assert tok("CC(=O)O")["input_ids"] == [3, 7, 7, 8, 10, 11, 9, 11, 4]
    assert tok("CN")["input_ids"] == [3, 7, 2, 4]  # N is not in this vocabulary
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a"]))
    with pytest.raises(CheckpointError, match="not a SMILES vocabulary"):
        load_tokenizer(str(tmp_path / "words"))
