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
from boom_kit.checkpoints import checkpoint_label, load_pretrained
from boom_kit.sequence_recipe import fine_tune
from boom_kit.tokenize import fit_tokenizer, save_vocab

PRETRAINING_HEADS = ("head.", "decoder.", "classifier.")


def build(param: Callable[[str, Any], Any], train_smiles: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    """(encoder, tokenizer, info): a fresh ModernBERT on a train-only vocabulary, or a pretrained one."""
    from transformers import ModernBertConfig, ModernBertModel

    max_length = param("max_length")
    source = param("pretrained")
    attn = "sdpa"
    if source:
        encoder, tokenizer, dropped = load_pretrained(ModernBertModel, str(source), allowed_unexpected=PRETRAINING_HEADS,
                                                      attn_implementation=attn)
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return encoder.float(), tokenizer, {"pretrained": checkpoint_label(str(source)), "dropped_head_weights": len(dropped)}
    tokenizer = fit_tokenizer(train_smiles, vocab_path, model_max_length=max_length)
    dropout = param("dropout")
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=param("hidden_size"),
        intermediate_size=param("intermediate_size"), num_hidden_layers=param("num_layers"),
        num_attention_heads=param("num_heads"), max_position_embeddings=max_length,
        local_attention=param("local_attention"), attention_dropout=dropout, mlp_dropout=dropout,
        embedding_dropout=dropout, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
        cls_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, sep_token_id=tokenizer.sep_token_id,
    )
    config._attn_implementation = attn
    return ModernBertModel(config), tokenizer, {"pretrained": None}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    encoder, tokenizer, info = build(ctx.param, ctx.train["smiles"].tolist(), ctx.artefact("vocab.json"))
    return fine_tune(ctx, encoder, tokenizer, info, dropout_key="head_dropout")


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers"])
