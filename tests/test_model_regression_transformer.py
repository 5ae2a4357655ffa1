"""Regression Transformer: number encoding, no target leakage, strict checkpoint loading, CPU smoke runs."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from tests.checkpoint_cases import assert_rejects_bad_checkpoints
from tests.conftest import model_module, param_getter, smoke_run

SMILES = ["CCO", "c1ccccc1N(=O)=O", "CC[N+](=O)[O-]", "C#N", "OC1CC1F", "c1cc[nH]c1"]


def _main():
    return model_module("regression-transformer")


def _decode_tokens(m, toks):
    classes = []
    for t in toks:
        digits = [tok for tok in t[1:] if tok != "_._"]
        classes.append([m.SIGNS.index(t[0]), *[m.DIGITS[p].index(tok) for p, tok in zip(m.PLACES, digits)]])
    return m.decode(np.array(classes))


def test_number_tokens_round_trip():
    m = _main()
    values = np.array([0.0, 1.234, -1.234, 3.0005, -0.0004, 9.9994, -12.0, 0.5])
    toks = [m.number_tokens(v) for v in values]
    assert toks[1] == ["_+_", "_0_1_", "_1_0_", "_._", "_2_-1_", "_3_-2_", "_4_-3_"]
    assert toks[4][0] == "_+_"  # -0.0004 rounds to +0.000
    expected = np.round(values, 3)
    expected[4] = 0.0
    assert np.allclose(_decode_tokens(m, toks), expected, atol=1e-9)


def test_values_beyond_ten_standard_deviations_are_encoded():
    """An OOD tail can lie more than 9.999 train SDs out; the encoding reaches 99.999 and clips beyond."""
    m = _main()
    values = np.array([12.345, -47.5, 99.999, 150.0, -1e6])
    decoded = _decode_tokens(m, [m.number_tokens(v) for v in values])
    assert np.allclose(decoded, [12.345, -47.5, 99.999, 99.999, -99.999], atol=1e-9)
    assert m.ZMAX == pytest.approx(99.999)
    assert len(m.NUMERIC_SLOTS) == len(m.PLACES) + 1


def test_selfies_cover_the_nitro_groups():
    m = _main()
    out = m.to_selfies(["CC(C)OC(=O)c1ccc(cc1)N(=O)=O", "C[N+](=O)[O-]", "c1cc[nH]c1"])
    assert all(s is not None for s in out) and "[O-1]" in out[1]


def test_targets_never_leak_into_the_input():
    m = _main()
    selfies = m.to_selfies(SMILES)
    _, tokenizer, _ = m.build(param_getter("regression-transformer", {"num_layers": 1, "d_model": 16, "num_heads": 2, "d_inner": 16}), selfies)
    z = np.array([1.234, -0.5, 2.0, 0.0, -3.21, 0.7])
    ids, att, cls_idx, _ = m.encode(tokenizer, selfies, z, 64)
    mask_id = tokenizer.mask_token_id
    for k in m.NUMERIC_SLOTS:
        assert (ids[:, k] == mask_id).all()
    # the same rows without targets encode identically: the input does not depend on y
    ids2, att2, _, _ = m.encode(tokenizer, selfies, None, 64)
    assert torch.equal(ids, ids2) and torch.equal(att, att2)
    assert m.decode(cls_idx.numpy())[0] == pytest.approx(1.234) and m.decode(cls_idx.numpy())[4] == pytest.approx(-3.21)
    assert tokenizer.decode(ids[0, m.PREFIX:][att[0, m.PREFIX:] == 1], skip_special_tokens=True) == selfies[0]


def _checkpoint(folder, d_model=32):
    from transformers import XLNetConfig, XLNetLMHeadModel

    from boom_kit.tokenize import fit_tokenizer

    m = _main()

    tok = fit_tokenizer(m.to_selfies(SMILES), extra_tokens=m.PROPERTY_TOKENS)
    config = XLNetConfig(vocab_size=len(tok), d_model=d_model, n_layer=2, n_head=2, d_inner=32, mem_len=None,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(3)
    model = XLNetLMHeadModel(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def test_checkpoint_loads_exactly_and_mismatches_fail(tmp_path):
    from boom_kit.checkpoints import CheckpointError
    from boom_kit.tokenize import build_vocab, make_tokenizer

    m = _main()
    saved, tok = _checkpoint(tmp_path / "ckpt")
    model, tokenizer, info = m.build(param_getter("regression-transformer", {"pretrained": str(tmp_path / "ckpt")}), [])
    ref = saved.state_dict()
    assert set(model.state_dict()) == set(ref)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert tokenizer.get_vocab() == tok.get_vocab()
    # a tokenizer without the property tokens cannot be used
    make_tokenizer(build_vocab(["[C][O]"])).save_pretrained(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="property tokens"):
        m.build(param_getter("regression-transformer", {"pretrained": str(tmp_path / "ckpt")}), [])
    assert_rejects_bad_checkpoints(lambda p: m.build(param_getter("regression-transformer", {"pretrained": str(p)}), []),
                                   lambda p, width: _checkpoint(p, d_model=width), tmp_path, "layer.1.")


def test_smoke_qm9_from_checkpoint(prepared, tmp_path):
    _checkpoint(tmp_path / "ckpt")
    outcome = smoke_run("regression-transformer", "lumo", sets={"pretrained": str(tmp_path / "ckpt")})
    assert "loaded from" in (outcome.folder / "log.txt").read_text()
