"""MoLFormer: rotary + linear-attention encoder over SMILES, regression head on the mean-pooled encoding.

The encoder (``molformer_model.py``, plain torch) follows MoLFormer-XL's architecture: 12 post-norm
layers, hidden 768, 12 heads, linear attention with 32 orthogonal random ReLU features after rotary
position embeddings.  From scratch by default on a train-only atom-level vocabulary (vocab.json);
``--set pretrained=<folder>`` loads weights AND tokenizer saved by ``MolformerModel.save_pretrained``
(IBM's hub checkpoints use other weight names and fail loudly).  Fine-tuning: AdamW with linear
warm-up/decay, mean pooling over real tokens, best-validation weights on a seeded slice of train,
bf16 autocast on GPU only.
"""
from __future__ import annotations

from typing import Any, Callable

import boom_kit
from boom_kit.checkpoints import checkpoint_label, load_pretrained
from boom_kit.sequence_recipe import fine_tune
from boom_kit.tokenize import fit_tokenizer, save_vocab
from molformer_model import MolformerConfig, MolformerModel


def build(param: Callable[[str, Any], Any], train_smiles: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    """(encoder, tokenizer, info): a fresh MoLFormer on a train-only vocabulary, or a saved one."""
    source = param("pretrained")
    if source:
        encoder, tokenizer, _ = load_pretrained(MolformerModel, str(source))
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return encoder.float(), tokenizer, {"pretrained": checkpoint_label(str(source))}
    tokenizer = fit_tokenizer(train_smiles, vocab_path, model_max_length=param("max_length"))
    config = MolformerConfig(
        vocab_size=len(tokenizer), hidden_size=param("hidden_size"), num_hidden_layers=param("num_layers"),
        num_attention_heads=param("num_heads"), intermediate_size=param("intermediate_size"),
        num_random_features=param("num_random_features"),
        embedding_dropout_prob=param("embedding_dropout"), hidden_dropout_prob=param("dropout"),
        pad_token_id=tokenizer.pad_token_id,
    )
    return MolformerModel(config), tokenizer, {"pretrained": None}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    encoder, tokenizer, info = build(ctx.param, ctx.train["smiles"].tolist(), ctx.artefact("vocab.json"))
    return fine_tune(ctx, encoder, tokenizer, info)


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers"])
