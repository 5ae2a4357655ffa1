"""ModernBERT over atom-level SMILES tokens with a regression head, trained from scratch by default.

ModernBERT (rotary positions, GeGLU MLP, pre-norm, alternating global/sliding-window attention) at a
shape BOOM used (8 layers x 768) on a train-only vocabulary (saved as vocab.json).  ``--set pretrained=<folder or
hub id>`` loads weights AND tokenizer from that one checkpoint (hub ids need network access); missing
or mis-shaped weights are an error.  Fine-tuning: AdamW with linear warm-up then cosine decay (spec), mean pooling (BOOM's)
over real tokens, best-validation weights on a seeded slice of train, bf16
autocast on GPU only, float32 on CPU.
"""
from __future__ import annotations

from typing import Any, Callable

import boom_kit
from boom_kit.tokenize import checkpoint_label, fine_tune, fit_tokenizer, load_pretrained, save_vocab

PRETRAINING_HEADS = ("head.", "decoder.", "classifier.")


def build(param: Callable[[str, Any], Any], train_smiles: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    """(encoder, tokenizer, info): a fresh ModernBERT on a train-only vocabulary, or a pretrained one."""
    from transformers import ModernBertConfig, ModernBertModel

    max_length = int(param("max_length", 256))
    source = param("pretrained", None)
    attn = "sdpa"
    if source:
        encoder, tokenizer, dropped = load_pretrained(ModernBertModel, str(source), allowed_unexpected=PRETRAINING_HEADS,
                                                      attn_implementation=attn)
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return encoder.float(), tokenizer, {"pretrained": checkpoint_label(str(source)), "dropped_head_weights": len(dropped)}
    tokenizer = fit_tokenizer(train_smiles, vocab_path, model_max_length=max_length)
    dropout = float(param("dropout", 0.0))
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=int(param("hidden_size", 512)),
        intermediate_size=int(param("intermediate_size", 1536)), num_hidden_layers=int(param("num_layers", 12)),
        num_attention_heads=int(param("num_heads", 8)), max_position_embeddings=max_length,
        local_attention=int(param("local_attention", 128)), attention_dropout=dropout, mlp_dropout=dropout,
        embedding_dropout=dropout, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        cls_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, sep_token_id=tokenizer.sep_token_id,
    )
    config._attn_implementation = attn
    return ModernBertModel(config), tokenizer, {"pretrained": None}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    encoder, tokenizer, info = build(ctx.param, ctx.train["smiles"].tolist(), ctx.artefact("vocab.json"))
    return fine_tune(ctx, encoder, tokenizer, info, pooling="mean", dropout_key="head_dropout")


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers"])
