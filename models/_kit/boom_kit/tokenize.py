"""Atom-level SMILES (and SELFIES) tokenisation for the sequence models.

One regex splits a SMILES into atoms and bond/branch/ring symbols (bracket atoms such as ``[N+]``,
``[O-]`` or ``[nH]`` are one token, ``Cl``/``Br`` are two-letter atoms, ``%nn`` is one ring closure),
so the nitro groups of the 10k set (``N(=O)=O``, ``[N+](=O)[O-]``) become ordinary tokens.  The same
regex splits SELFIES, whose symbols are all bracketed.  The vocabulary is built from the TRAIN split
only; a test token never seen in train becomes ``[UNK]``.  ``make_tokenizer`` wraps it as a
``transformers.PreTrainedTokenizerFast`` (a ``tokenizers`` WordLevel model behind a regex
pre-tokenizer), so Hugging Face models get a normal tokenizer that ``save_pretrained`` writes next to
the weights.  Pretrained checkpoints load through :mod:`boom_kit.checkpoints`; the sequence models'
fine-tuning recipe is :mod:`boom_kit.sequence_recipe`.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

SMILES_PATTERN = (
    r"(\[[^\]]+\]|Br|Cl|%[0-9]{2}|[BCNOPSFI]|[bcnops]|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|[0-9])"
)
_SMILES_RE = re.compile(SMILES_PATTERN)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def split_smiles(smiles: str) -> list[str]:
    """Atom-level tokens of one SMILES (or SELFIES); raises if a character is not covered."""
    tokens = _SMILES_RE.findall(smiles)
    if "".join(tokens) != smiles:
        raise ValueError(f"SMILES tokenizer does not cover every character of {smiles!r}")
    return tokens


def build_vocab(train_sequences: Iterable[str], extra_tokens: Sequence[str] = ()) -> dict[str, int]:
    """token -> id from the TRAIN sequences only: special tokens, ``extra_tokens``, then tokens by
    descending frequency (ties alphabetical), so the same train split always gives the same ids."""
    counts: Counter[str] = Counter()
    for seq in train_sequences:
        counts.update(split_smiles(seq))
    vocab: dict[str, int] = {}
    for tok in (*SPECIAL_TOKENS, *extra_tokens):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    for tok, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    return vocab


def save_vocab(vocab: dict[str, int], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(vocab, indent=0))
    return path


def load_vocab(path: str | Path) -> dict[str, int]:
    return json.loads(Path(path).read_text())


def make_tokenizer(vocab: dict[str, int], model_max_length: int = 512, add_special: bool = True) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``vocab``: regex pre-tokenizer, WordLevel model, optional
    ``[CLS] ... [SEP]`` template, and a decoder that joins tokens back without spaces."""
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel(vocab=dict(vocab), unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_PATTERN), behavior="isolated")
    core.decoder = decoders.Fuse()
    if add_special:
        core.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B {SEP}",
            special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token=UNK, pad_token=PAD, cls_token=CLS, sep_token=SEP,
        mask_token=MASK, model_max_length=model_max_length,
    )


def fit_tokenizer(train_sequences: Sequence[str], vocab_path: str | Path | None = None,
                  extra_tokens: Sequence[str] = (), model_max_length: int = 512) -> Any:
    """Build the vocabulary from the training sequences, save it (``vocab_path``) and wrap it."""
    vocab = build_vocab(train_sequences, extra_tokens)
    if vocab_path is not None:
        save_vocab(vocab, vocab_path)
    return make_tokenizer(vocab, model_max_length=model_max_length)


def unknown_fraction(tokenizer: Any, sequences: Sequence[str]) -> float:
    """Share of tokens of ``sequences`` that map to [UNK] (test tokens never seen in train)."""
    unk, total = tokenizer.unk_token_id, 0
    n_unk = 0
    for ids in tokenizer(list(sequences), add_special_tokens=False)["input_ids"]:
        total += len(ids)
        n_unk += sum(1 for i in ids if i == unk)
    return n_unk / max(1, total)


def encode(tokenizer: Any, sequences: Sequence[str], max_length: int) -> tuple[Any, Any, int]:
    """(input_ids, attention_mask, n_truncated) as padded long tensors."""
    enc = tokenizer(list(sequences), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    full = tokenizer(list(sequences), add_special_tokens=True)["input_ids"]
    n_truncated = sum(1 for ids in full if len(ids) > max_length)
    return enc["input_ids"], enc["attention_mask"], n_truncated
