"""ChemBERTa: CPU smoke runs through the local runner, and strict loading of a pretrained checkpoint."""
from __future__ import annotations


import pytest
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
    encoder, tokenizer, info = _main().build(param_getter("chemberta", {"pretrained": str(tmp_path / "ckpt")}), ["CCC"])
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
    assert_rejects_bad_checkpoints(lambda p: _main().build(param_getter("chemberta", {"pretrained": str(p)}), ["CCC"]),
                                   lambda p, width: _tiny_checkpoint(p, hidden=width), tmp_path, "layer.1.")


def test_smoke_qm9_from_pretrained_checkpoint(prepared, tmp_path):
    _tiny_checkpoint(tmp_path / "ckpt")
    outcome = smoke_run("chemberta", "homo", sets={"pretrained": str(tmp_path / "ckpt")})
    log = (outcome.folder / "log.txt").read_text()
    assert "loaded from" in log


# ------------------------------------------------------------------ a real checkpoint: the rxnfp wheel's BERT

RXNFP_BERT = "pkg:rxnfp/models/transformers/bert_pretrained"


def _rxnfp_folder():
    """The rxnfp checkpoint folder (requirements/no-deps.txt installs the wheel); CI fails rather than skips."""
    import importlib.util
    import os
    from pathlib import Path

    spec = importlib.util.find_spec("rxnfp")
    if spec is None:
        if os.environ.get("CI") == "true":
            pytest.fail("rxnfp is not installed: make setup-models installs requirements/no-deps.txt")
        pytest.skip("rxnfp not installed (pip install --no-deps -r requirements/no-deps.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "transformers" / "bert_pretrained"


def test_rxnfp_bert_checkpoint_loads_through_the_kit():
    """Real pretrained weights (a 12-layer BERT trained on reaction SMILES) through chemberta's bert variant:
    every encoder weight equals the checkpoint's, the tokenizer keeps the checkpoint's token ids, and the run
    is labelled with the checkpoint and the package version."""
    folder = _rxnfp_folder()
    from importlib import metadata

    encoder, tokenizer, info = _main().build(param_getter("chemberta", {"architecture": "bert", "pretrained": RXNFP_BERT}), ["CCC"])
    assert info["pretrained"] == f"{RXNFP_BERT} (rxnfp {metadata.version('rxnfp')})"
    assert info["architecture"] == "bert" and info["dropped_head_weights"] > 0  # the MLM/NSP heads and pooler
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    ref = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.") and ".pooler." not in k}
    got = encoder.state_dict()
    assert set(got) <= set(ref)  # every encoder weight comes from the checkpoint
    assert all(k.endswith("position_ids") for k in set(ref) - set(got))  # only a constant buffer is left
    for k, v in got.items():
        assert torch.equal(v, ref[k]), k
    assert sum(p.numel() for p in encoder.parameters()) > 6_000_000
    lines = (folder / "vocab.txt").read_text().splitlines()
    smiles = "CC(=O)Nc1ccc(O)cc1[N+](=O)[O-]"
    ids = tokenizer(smiles)["input_ids"]
    tokens = ["[CLS]", "C", "C", "(", "=", "O", ")", "N", "c", "1", "c", "c", "c", "(", "O", ")", "c", "c", "1",
              "[N+]", "(", "=", "O", ")", "[O-]", "[SEP]"]
    assert ids == [lines.index(t) for t in tokens]
    with torch.no_grad():  # and it runs: real hidden states, not NaN
        out = encoder(**tokenizer([smiles], return_tensors="pt")).last_hidden_state
    assert out.shape == (1, len(tokens), 256) and torch.isfinite(out).all()


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="choose roberta or bert"):
        _main().build(param_getter("chemberta", {"architecture": "gpt"}), ["CCC"])


def test_bert_from_scratch_builds():
    encoder, _, info = _main().build(param_getter("chemberta", {"architecture": "bert", "num_layers": 1, "hidden_size": 16,
                                                   "num_heads": 2, "intermediate_size": 16}), SAMPLE_SMILES)
    assert type(encoder).__name__ == "BertModel" and info == {"pretrained": None, "architecture": "bert"}


def test_smoke_density_fine_tunes_the_rxnfp_bert(prepared):
    """The fine-tuning path end to end on real weights; the record says which checkpoint the run started from."""
    import json

    _rxnfp_folder()
    outcome = smoke_run("chemberta", "density", sets={"architecture": "bert", "pretrained": RXNFP_BERT,
                                                      "hidden_size": "256", "num_heads": "4", "lr": "5e-5"})
    report = json.loads((outcome.folder / "model_report.json").read_text())
    assert report["pretrained"].startswith(RXNFP_BERT)
    assert outcome.record.model_report.pretrained == report["pretrained"]
    scratch = json.loads((smoke_run("chemberta", "density").folder / "model_report.json").read_text())
    assert scratch["pretrained"] is None
