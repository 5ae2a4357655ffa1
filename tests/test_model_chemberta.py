"""ChemBERTa: CPU smoke runs through the local runner, and strict loading of a pretrained checkpoint."""
from __future__ import annotations


import torch

from tests.checkpoint_cases import assert_rejects_bad_checkpoints
from tests.conftest import SAMPLE_SMILES, model_module, param_getter, smoke_run


def _main():
    return model_module("chemberta")


def _tiny_checkpoint(folder, hidden=32):
    from transformers import RobertaConfig, RobertaForMaskedLM

    from boom_kit.tokenize import build_vocab, make_tokenizer

    tok = make_tokenizer(build_vocab(SAMPLE_SMILES))
    config = RobertaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=300, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id)
    torch.manual_seed(1)
    model = RobertaForMaskedLM(config)  # an MLM checkpoint, like the published ChemBERTa ones
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def test_pretrained_checkpoint_loads_exactly(tmp_path):
    saved = _tiny_checkpoint(tmp_path / "ckpt")
    encoder, tokenizer, info = _main().build(param_getter({"pretrained": str(tmp_path / "ckpt")}), ["CCC"])
    assert info["dropped_head_weights"] > 0  # the MLM head is dropped, reported
    ref = {k.removeprefix("roberta."): v for k, v in saved.state_dict().items() if k.startswith("roberta.")}
    got = encoder.state_dict()
    assert set(got) <= set(ref) and len(got) > 10
    for k, v in got.items():
        assert torch.equal(v, ref[k]), k
    assert tokenizer.get_vocab() == saved_vocab(tmp_path / "ckpt")


def saved_vocab(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder).get_vocab()


def test_mismatched_or_missing_weights_are_an_error(tmp_path):
    assert_rejects_bad_checkpoints(lambda p: _main().build(param_getter({"pretrained": str(p)}), ["CCC"]),
                                   lambda p, width: _tiny_checkpoint(p, hidden=width), tmp_path, "layer.1.")


def test_smoke_density(prepared):
    outcome = smoke_run("chemberta", "density")
    assert outcome.record is not None


def test_smoke_qm9_from_pretrained_checkpoint(prepared, tmp_path):
    _tiny_checkpoint(tmp_path / "ckpt")
    outcome = smoke_run("chemberta", "homo", sets={"pretrained": str(tmp_path / "ckpt")})
    log = (outcome.folder / "log.txt").read_text()
    assert "loaded from" in log
