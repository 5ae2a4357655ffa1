"""ModernBERT: CPU smoke runs through the local runner, and strict loading of a pretrained checkpoint."""
from __future__ import annotations


import torch

from tests.checkpoint_cases import assert_rejects_bad_checkpoints
from tests.conftest import SAMPLE_SMILES, model_module, param_getter, smoke_run


def _main():
    return model_module("modernbert")


def _tiny_checkpoint(folder, hidden=32):
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    from boom_kit.tokenize import build_vocab, make_tokenizer

    tok = make_tokenizer(build_vocab(SAMPLE_SMILES))
    config = ModernBertConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=48, num_hidden_layers=3,
                              num_attention_heads=2, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.cls_token_id, cls_token_id=tok.cls_token_id,
                              eos_token_id=tok.sep_token_id, sep_token_id=tok.sep_token_id)
    torch.manual_seed(1)
    model = ModernBertForMaskedLM(config)  # an MLM checkpoint, like a pretrained ModernBERT
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, AutoTokenizer.from_pretrained(folder)


def test_pretrained_checkpoint_loads_exactly(tmp_path):
    saved, saved_tok = _tiny_checkpoint(tmp_path / "ckpt")
    encoder, tokenizer, info = _main().build(param_getter("modernbert", {"pretrained": str(tmp_path / "ckpt")}), ["CCC"])
    assert info["dropped_head_weights"] > 0  # the MLM head is dropped, reported
    ref = {k.removeprefix("model."): v for k, v in saved.state_dict().items() if k.startswith("model.")}
    got = encoder.state_dict()
    assert set(got) == set(ref)
    for k, v in got.items():
        assert torch.equal(v, ref[k]), k
    assert tokenizer.get_vocab() == saved_tok.get_vocab()


def test_mismatched_or_missing_weights_are_an_error(tmp_path):
    assert_rejects_bad_checkpoints(lambda p: _main().build(param_getter("modernbert", {"pretrained": str(p)}), ["CCC"]),
                                   lambda p, width: _tiny_checkpoint(p, hidden=width), tmp_path, "layers.2.")


def test_default_size_is_about_40m_parameters():
    encoder, _, _ = _main().build(param_getter("modernbert", {}), ["CCO", "c1ccccc1N(=O)=O"])
    n = sum(p.numel() for p in encoder.parameters())
    assert 35e6 < n < 45e6, n


def test_smoke_qm9_from_pretrained_checkpoint(prepared, tmp_path):
    _tiny_checkpoint(tmp_path / "ckpt")
    outcome = smoke_run("modernbert", "gap", sets={"pretrained": str(tmp_path / "ckpt")})
    assert "loaded from" in (outcome.folder / "log.txt").read_text()
