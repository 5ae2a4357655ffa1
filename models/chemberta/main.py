"""ChemBERTa: a RoBERTa encoder over atom-level SMILES tokens with a regression head (BOOM's recipe).

From scratch by default: the vocabulary is built from the training SMILES only (saved as vocab.json)
and the encoder is initialised randomly at ChemBERTa-77M's shape.  ``--set pretrained=<folder or hub
id>`` loads weights AND tokenizer from that one checkpoint (a RoBERTa MLM/encoder checkpoint, e.g. a
DeepChem ChemBERTa; hub ids need network access); missing or mis-shaped weights are an error.
Fine-tuning: BOOM's 5 epochs at batch 32, AdamW with linear warm-up/decay, first-token pooling,
best-validation weights on a seeded slice of train, bf16 autocast on GPU only.
"""
from __future__ import annotations

from typing import Any, Callable

import boom_kit
from boom_kit.tokenize import fine_tune, fit_tokenizer, load_pretrained, save_vocab

PRETRAINING_HEADS = ("lm_head.", "classifier.", "regression.", "pooler.")


def build(param: Callable[[str, Any], Any], train_smiles: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    """(encoder, tokenizer, info): a fresh RoBERTa on a train-only vocabulary, or a pretrained one."""
    from transformers import RobertaConfig, RobertaModel

    max_length = int(param("max_length", 256))
    source = param("pretrained", None)
    if source:
        encoder, tokenizer, dropped = load_pretrained(RobertaModel, str(source), allowed_unexpected=PRETRAINING_HEADS,
                                                      add_pooling_layer=False)
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return encoder.float(), tokenizer, {"pretrained": str(source), "dropped_head_weights": len(dropped)}
    tokenizer = fit_tokenizer(train_smiles, vocab_path, model_max_length=max_length)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=int(param("hidden_size", 384)),
        num_hidden_layers=int(param("num_layers", 3)), num_attention_heads=int(param("num_heads", 12)),
        intermediate_size=int(param("intermediate_size", 464)), hidden_dropout_prob=float(param("dropout", 0.1)),
        attention_probs_dropout_prob=float(param("dropout", 0.1)), max_position_embeddings=max_length + 2,
        type_vocab_size=1, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    return RobertaModel(config, add_pooling_layer=False), tokenizer, {"pretrained": None}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    encoder, tokenizer, info = build(ctx.param, ctx.train["smiles"].tolist(), ctx.artefact("vocab.json"))
    return fine_tune(ctx, encoder, tokenizer, info, pooling="cls")


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers"])
