"""MoLFormer: CPU smoke runs, the linear attention's padding/eval behaviour, strict checkpoint loading."""
from __future__ import annotations


import torch

from tests.checkpoint_cases import assert_rejects_bad_checkpoints
from tests.conftest import SAMPLE_SMILES, model_module, param_getter, smoke_run


def _main():
    return model_module("molformer")


def _tiny(hidden=32, vocab=20, layers=2):
    mm = model_module("molformer", "molformer_model")
    MolformerConfig, MolformerModel = mm.MolformerConfig, mm.MolformerModel

    torch.manual_seed(1)
    return MolformerModel(MolformerConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                                          num_attention_heads=2, intermediate_size=32, num_random_features=8))


def _checkpoint(folder, hidden=32):
    from boom_kit.tokenize import build_vocab, make_tokenizer

    tok = make_tokenizer(build_vocab(SAMPLE_SMILES))
    model = _tiny(hidden=hidden, vocab=len(tok))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def test_padding_does_not_change_real_tokens_and_eval_is_deterministic():
    model = _tiny().eval()
    ids = torch.randint(5, 20, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    out = model(ids, mask).last_hidden_state
    ids2 = ids.clone()
    ids2[1, 6:] = 0
    out2 = model(ids2, mask).last_hidden_state
    assert torch.allclose(out[1, :6], out2[1, :6], atol=1e-5)
    short = model(ids[1:, :6], mask[1:, :6]).last_hidden_state
    assert torch.allclose(out[1, :6], short[0], atol=1e-5)
    assert torch.equal(model(ids, mask).last_hidden_state, out)
    # training redraws the random features; positions matter (rotary)
    before = model.layers[0].attention.feature_map.clone()
    model.train()
    model(ids, mask)
    assert not torch.equal(before, model.layers[0].attention.feature_map)
    model.eval()
    perm = model(ids[:, torch.tensor([1, 0, 2, 3, 4, 5, 6, 7, 8])], mask).last_hidden_state
    assert not torch.allclose(perm[0, 2:], model(ids, mask).last_hidden_state[0, 2:], atol=1e-4)


def test_checkpoint_loads_exactly_and_mismatches_fail(tmp_path):
    saved, tok = _checkpoint(tmp_path / "ckpt")
    encoder, tokenizer, info = _main().build(param_getter("molformer", {"pretrained": str(tmp_path / "ckpt")}), ["CCC"])
    assert info["pretrained"] == str(tmp_path / "ckpt")
    ref = saved.state_dict()
    assert set(encoder.state_dict()) == set(ref)
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert tokenizer.get_vocab() == tok.get_vocab()
    # the loaded encoder computes what the saved one computes: state_dict equality misses derived constants
    # (rotary frequencies) that from_pretrained would leave uninitialised if they were non-persistent buffers
    ids, mask = torch.randint(5, len(tok), (2, 7)), torch.ones(2, 7, dtype=torch.long)
    assert torch.equal(encoder.eval()(ids, mask).last_hidden_state, saved.eval()(ids, mask).last_hidden_state)
    assert_rejects_bad_checkpoints(lambda p: _main().build(param_getter("molformer", {"pretrained": str(p)}), ["CCC"]),
                                   lambda p, width: _checkpoint(p, hidden=width), tmp_path, "layers.1.")


def test_default_shape_is_molformer_xl():
    encoder, _, _ = _main().build(param_getter("molformer", {}), SAMPLE_SMILES)
    assert len(encoder.layers) == 12 and encoder.config.hidden_size == 768
    assert encoder.layers[0].attention.feature_map.shape == (64, 32)


def test_smoke_qm9_from_checkpoint(prepared, tmp_path):
    _checkpoint(tmp_path / "ckpt")
    outcome = smoke_run("molformer", "alpha", sets={"pretrained": str(tmp_path / "ckpt")})
    log = (outcome.folder / "log.txt").read_text()
    assert "loaded from" in log
    assert "instantiate a model of type" not in log, "transformers does not know the boom-molformer config type"
    first = (outcome.folder / "predictions.csv").read_bytes()
    # the same seed from the same checkpoint is the same run, bit for bit (uninitialised memory is not)
    again = smoke_run("molformer", "alpha", sets={"pretrained": str(tmp_path / "ckpt")})
    assert (again.folder / "predictions.csv").read_bytes() == first
