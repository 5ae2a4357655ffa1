"""ChemBERTa: a RoBERTa (or BERT) encoder over atom-level SMILES tokens with a regression head (BOOM's recipe).

From scratch by default: the vocabulary is built from the training SMILES only (saved as vocab.json)
and the encoder is initialised randomly at ChemBERTa-77M's shape.  ``--set pretrained=<folder, pkg: folder
or hub id>`` loads weights AND tokenizer from that one checkpoint (hub ids need network access); missing or
mis-shaped weights are an error.  ``architecture: roberta`` (ChemBERTa) or ``bert`` (BertModel), for BERT
checkpoints such as the rxnfp package's reaction-SMILES BERT
(``--set architecture=bert --set pretrained=pkg:rxnfp/models/transformers/bert_pretrained``, offline); the
run record names the checkpoint.  Fine-tuning: 5 epochs at batch 32 as BOOM's ChemBERTa runs, AdamW with
linear warm-up/decay, first-token pooling, best-validation weights on a seeded slice of train, bf16 autocast
on GPU only.
"""
from __future__ import annotations

from typing import Any, Callable

import boom_kit
from boom_kit.checkpoints import checkpoint_label, load_pretrained
from boom_kit.sequence_recipe import fine_tune
from boom_kit.tokenize import fit_tokenizer, save_vocab

# pretraining heads a checkpoint may carry beyond the encoder (dropped, counted in the run record)
PRETRAINING_HEADS = {
    "roberta": ("lm_head.", "classifier.", "regression.", "pooler."),
    "bert": ("cls.", "bert.pooler.", "pooler.", "classifier."),
}


def _classes(architecture: str):
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    if architecture not in PRETRAINING_HEADS:
        raise ValueError(f"architecture {architecture!r}: choose roberta or bert")
    return (RobertaConfig, RobertaModel) if architecture == "roberta" else (BertConfig, BertModel)


def build(param: Callable[[str, Any], Any], train_smiles: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    """(encoder, tokenizer, info): a fresh RoBERTa/BERT on a train-only vocabulary, or a pretrained one."""
    architecture = param("architecture")
    config_cls, model_cls = _classes(architecture)
    max_length = param("max_length")
    source = param("pretrained")
    if source:
        encoder, tokenizer, dropped = load_pretrained(model_cls, str(source), allowed_unexpected=PRETRAINING_HEADS[architecture],
                                                      add_pooling_layer=False)
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return encoder.float(), tokenizer, {"pretrained": checkpoint_label(str(source)), "architecture": architecture,
                                            "dropped_head_weights": len(dropped)}
    tokenizer = fit_tokenizer(train_smiles, vocab_path, model_max_length=max_length)
    config = config_cls(
        vocab_size=len(tokenizer), hidden_size=param("hidden_size"),
        num_hidden_layers=param("num_layers"), num_attention_heads=param("num_heads"),
        intermediate_size=param("intermediate_size"), hidden_dropout_prob=param("dropout"),
        attention_probs_dropout_prob=param("dropout"),
        max_position_embeddings=max_length + 2, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    return model_cls(config, add_pooling_layer=False), tokenizer, {"pretrained": None, "architecture": architecture}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    encoder, tokenizer, info = build(ctx.param, ctx.train["smiles"].tolist(), ctx.artefact("vocab.json"))
    return fine_tune(ctx, encoder, tokenizer, info)


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers"])
