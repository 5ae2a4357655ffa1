"""Atom-level SMILES (and SELFIES) tokenisation for the sequence models, and strict checkpoint loading.

One regex splits a SMILES into atoms and bond/branch/ring symbols (bracket atoms such as ``[N+]``,
``[O-]`` or ``[nH]`` are one token, ``Cl``/``Br`` are two-letter atoms, ``%nn`` is one ring closure),
so the nitro groups of the 10k set (``N(=O)=O``, ``[N+](=O)[O-]``) become ordinary tokens.  The same
regex splits SELFIES, whose symbols are all bracketed.  The vocabulary is built from the TRAIN split
only; a test token never seen in train becomes ``[UNK]``.  ``make_tokenizer`` wraps it as a
``transformers.PreTrainedTokenizerFast`` (a ``tokenizers`` WordLevel model behind a regex
pre-tokenizer), so Hugging Face models get a normal tokenizer that ``save_pretrained`` writes next to
the weights.

``load_pretrained`` loads weights AND tokenizer from one checkpoint folder (or hub id) and refuses
anything that would leave random weights behind: missing, unexpected (outside declared pretraining
heads) or shape-mismatched keys are an error with a one-line message, never a silent fallback.  A source
``pkg:<distribution>/<path>`` names a checkpoint folder shipped inside an installed Python package (e.g.
``pkg:rxnfp/models/transformers/bert_pretrained``, a small BERT that works offline).  A checkpoint whose
only tokenizer file is a BERT ``vocab.txt`` of SMILES tokens (rxnfp's) gets this module's regex tokenizer
over that vocabulary, with the checkpoint's own token ids: what rxnfp's SmilesTokenizer does.
The fine-tuned model's report records the checkpoint (``Output.pretrained``).
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


class CheckpointError(RuntimeError):
    """A pretrained checkpoint that cannot be loaded completely."""


def _short(keys: Iterable[Any], n: int = 3) -> str:
    keys = sorted(str(k) for k in keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_loading_info(source: str, info: dict[str, Any], allowed_unexpected: Sequence[str] = ()) -> list[str]:
    """Raise ``CheckpointError`` when loading left weights random or ignored; return the keys of
    declared pretraining heads (``allowed_unexpected`` prefixes) that were dropped."""
    missing = set(info.get("missing_keys") or ())
    mismatched = set(info.get("mismatched_keys") or ())
    unexpected = set(info.get("unexpected_keys") or ())
    dropped = sorted(k for k in unexpected if any(k.startswith(p) for p in allowed_unexpected))
    unexpected -= set(dropped)
    if mismatched:
        raise CheckpointError(f"pretrained checkpoint {source}: {len(mismatched)} weight(s) have the wrong shape: {_short(k[0] if isinstance(k, tuple) else k for k in mismatched)}")
    if missing:
        raise CheckpointError(f"pretrained checkpoint {source}: {len(missing)} weight(s) missing (would stay random): {_short(missing)}")
    if unexpected:
        raise CheckpointError(f"pretrained checkpoint {source}: {len(unexpected)} unexpected weight(s) (architecture differs): {_short(unexpected)}")
    if info.get("error_msgs"):
        raise CheckpointError(f"pretrained checkpoint {source}: {str(info['error_msgs'][0]).splitlines()[0]}")
    return dropped


PACKAGE_PREFIX = "pkg:"


def resolve_checkpoint(source: str) -> tuple[str, str]:
    """(path or hub id to load, label for the run record) of a checkpoint source.

    ``pkg:<distribution>/<path>`` resolves inside the installed distribution and is labelled with its version
    (``pkg:rxnfp/models/... (rxnfp 0.1.0)``); anything else is returned as given.
    """
    if not source.startswith(PACKAGE_PREFIX):
        return source, source
    from importlib import metadata, util

    dist, _, sub = source[len(PACKAGE_PREFIX):].partition("/")
    spec = util.find_spec(dist.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"checkpoint {source!r}: package {dist!r} is not installed (pip install --no-deps {dist})")
    folder = Path(list(spec.submodule_search_locations)[0]) / sub
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {source!r}: no folder {sub!r} inside the installed {dist} package")
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "unknown version"
    return str(folder), f"{source} ({dist} {version})"


def checkpoint_label(source: str) -> str:
    """How the run record names a checkpoint (a package checkpoint with its version)."""
    return resolve_checkpoint(source)[1]


def _vocab_txt_tokenizer(folder: Path) -> Any:
    """The SMILES regex tokenizer over a checkpoint's BERT ``vocab.txt`` (one token per line, id = line)."""
    tokens = folder.joinpath("vocab.txt").read_text().splitlines()
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        vocab.setdefault(tok, i)
    missing = [t for t in (*SPECIAL_TOKENS, "C", "c", "(", "=") if t not in vocab]
    if missing:
        raise CheckpointError(f"checkpoint {folder}: vocab.txt is not a SMILES vocabulary (lacks {missing})")
    return make_tokenizer(vocab)


def load_tokenizer(path: str) -> Any:
    """The checkpoint's own tokenizer, or the SMILES tokenizer over its ``vocab.txt`` when that is all it has."""
    from transformers import AutoTokenizer

    folder = Path(path)
    own = ("tokenizer.json", "tokenizer_config.json")
    if folder.is_dir() and (folder / "vocab.txt").is_file() and not any((folder / f).is_file() for f in own):
        return _vocab_txt_tokenizer(folder)
    return AutoTokenizer.from_pretrained(path)


def load_pretrained(model_cls: Any, source: str, allowed_unexpected: Sequence[str] = (), **model_kwargs: Any) -> tuple[Any, Any, list[str]]:
    """(model, tokenizer, dropped_head_keys) from ONE checkpoint folder, package folder or hub id, strictly.

    Hub ids need network access; without it this fails with a one-line ``CheckpointError``.
    """
    path, _ = resolve_checkpoint(source)
    try:
        model, info = model_cls.from_pretrained(path, output_loading_info=True, **model_kwargs)
    except CheckpointError:
        raise
    except Exception as exc:  # missing folder, no network for a hub id, size mismatch raised by transformers
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load pretrained weights from {source!r} ({first}); hub ids need network access") from None
    dropped = check_loading_info(source, info, allowed_unexpected)
    try:
        tokenizer = load_tokenizer(path)
    except CheckpointError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"pretrained checkpoint {source!r} has no usable tokenizer ({first})") from None
    if tokenizer.pad_token_id is None:
        raise CheckpointError(f"pretrained checkpoint {source!r}: its tokenizer has no padding token")
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise CheckpointError(f"pretrained checkpoint {source!r}: tokenizer has {len(tokenizer)} tokens but the model embeds only {model.get_input_embeddings().num_embeddings}")
    return model, tokenizer, dropped


# --------------------------------------------------------------------------------------------------
# Shared fine-tuning recipe of the SMILES encoders (chemberta, modernbert, molformer): an encoder that
# returns ``last_hidden_state``, a pooled regression head, MSE on standardised targets, AdamW with
# linear warm-up/decay, best-validation weights on a seeded slice of train, bf16 autocast on GPU only.
# --------------------------------------------------------------------------------------------------


def _regressor_class():
    import torch
    from torch import nn

    class SequenceRegressor(nn.Module):
        """Encoder + pooled two-layer head: ``pooling`` is 'cls' (first token) or 'mean' (over real tokens)."""

        def __init__(self, encoder: nn.Module, hidden_size: int, pooling: str = "cls", dropout: float = 0.1):
            super().__init__()
            if pooling not in ("cls", "mean"):
                raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
            self.encoder, self.pooling = encoder, pooling
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(hidden_size, 1))

        def forward(self, input_ids: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if self.pooling == "cls":
                pooled = h[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    return SequenceRegressor


def lr_factor(schedule: str, total: int, n_warm: int):
    """Step -> learning-rate factor: linear warm-up over ``n_warm`` steps, then linear or cosine decay to 0."""
    import math

    if schedule not in ("linear", "cosine"):
        raise ValueError(f"schedule {schedule!r}: choose linear or cosine")

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / max(1, n_warm)
        t = min(1.0, (step - n_warm) / max(1, total - n_warm))
        return max(0.0, 1.0 - t) if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def fit_predict_sequence_regressor(ctx: Any, encoder: Any, tokenizer: Any, hidden_size: int, *, pooling: str,
                                   lr: float, batch_size: int, epochs: int, max_length: int,
                                   weight_decay: float = 0.01, warmup: float = 0.1, dropout: float = 0.1,
                                   patience: int | None = None, clip: float = 1.0, extra: dict | None = None,
                                   schedule: str = "linear") -> Any:
    """Fine-tune ``encoder`` + head on ``ctx.train`` and predict ``ctx.test`` (original units).

    ``schedule``: after the linear warm-up the learning rate decays to zero linearly or along a cosine."""
    import numpy as np
    import torch

    from boom_kit.entry import Output
    from boom_kit.scaling import TargetScaler
    from boom_kit.splitting import validation_split
    from boom_kit.torch_loop import count_parameters, fit, predict_in_batches

    device = ctx.device
    with ctx.stopwatch("featurise"):
        ids, mask, n_trunc = encode(tokenizer, ctx.train["smiles"].tolist(), max_length)
        test_ids, test_mask, n_trunc_test = encode(tokenizer, ctx.test["smiles"].tolist(), max_length)
        unk = unknown_fraction(tokenizer, ctx.test["smiles"].tolist())
    if n_trunc or n_trunc_test:
        ctx.note(f"{n_trunc} train and {n_trunc_test} test SMILES truncated to {max_length} tokens")
    if unk > 0:
        ctx.note(f"{unk:.4%} of test tokens are unknown to the train vocabulary ([UNK])")
    y = ctx.train["y"].to_numpy(dtype=np.float64)
    tr, va = validation_split(len(y), ctx.seed)
    scaler = TargetScaler().fit(y[tr])
    z = torch.tensor(scaler.transform(y), dtype=torch.float32)

    model = _regressor_class()(encoder, hidden_size, pooling=pooling, dropout=dropout).to(device)
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "norm" in n.lower()]
    decay = [p for n, p in model.named_parameters() if not (p.ndim < 2 or "norm" in n.lower())]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = max(1, epochs * int(np.ceil(len(tr) / batch_size)))
    n_warm = int(warmup * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, total, n_warm))

    def forward(all_ids: torch.Tensor, all_mask: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        m = all_mask[rows]
        width = int(m.sum(1).max())
        b_ids, b_mask = all_ids[rows, :width].to(device), m[:, :width].to(device)
        if device == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return model(b_ids, b_mask).float()
        return model(b_ids, b_mask)

    def step(idx: np.ndarray) -> torch.Tensor:
        rows = tr[idx]
        return torch.nn.functional.mse_loss(forward(ids, mask, rows), z[rows].to(device))

    def predict_val() -> np.ndarray:
        return predict_in_batches(lambda i: forward(ids, mask, va[i]), len(va), 2 * batch_size)

    with ctx.stopwatch("train"):
        result = fit(model, optimizer, step, predict_val, z[va].numpy().astype(np.float64), n_train=len(tr),
                     batch_size=batch_size, epochs=epochs, seed=ctx.seed, scheduler=scheduler,
                     scheduler_per="step", patience=patience, clip=clip)
    with ctx.stopwatch("predict"):
        order = np.arange(len(ctx.test))
        z_pred = predict_in_batches(lambda i: forward(test_ids, test_mask, order[i]), len(order), 2 * batch_size)
    return Output(
        y_pred=scaler.inverse(z_pred), n_parameters=count_parameters(model), epochs=result.epochs,
        best_epoch=result.best_epoch, pretrained=(extra or {}).get("pretrained"),
        extra={"best_val_rmse_scaled": result.best_val_rmse, "per_epoch_s": result.per_epoch_s,
               "vocab_size": len(tokenizer), "pooling": pooling, **(extra or {})},
    )


FINE_TUNE_REQUIRED = ("lr", "batch_size", "epochs", "max_length")


def fine_tune(ctx: Any, encoder: Any, tokenizer: Any, info: dict, *, pooling: str = "cls",
              dropout_key: str = "dropout") -> Any:
    """The entry point of a sequence model in one call: hyperparameters from the task, a note when pretrained
    weights were loaded, then :func:`fit_predict_sequence_regressor`.

    ``lr``, ``batch_size``, ``epochs`` and ``max_length`` come from the model's spec (``model.yaml`` is their one
    source); ``pooling`` is the model's own choice unless the spec has one.
    """
    missing = [k for k in FINE_TUNE_REQUIRED if ctx.param(k) is None]
    if missing:
        raise ValueError(f"hyperparameters {', '.join(missing)} missing: add them to the model's model.yaml defaults")
    if info.get("pretrained"):
        dropped = info.get("dropped_head_weights")
        ctx.note(f"encoder and tokenizer loaded from {info['pretrained']}"
                 + (f" ({dropped} pretraining-head weights dropped)" if dropped is not None else ""))
    return fit_predict_sequence_regressor(
        ctx, encoder, tokenizer, encoder.config.hidden_size, pooling=ctx.param("pooling", pooling),
        lr=float(ctx.param("lr")), batch_size=int(ctx.param("batch_size")), epochs=int(ctx.param("epochs")),
        max_length=int(ctx.param("max_length")), weight_decay=float(ctx.param("weight_decay", 0.01)),
        warmup=float(ctx.param("warmup", 0.1)), dropout=float(ctx.param(dropout_key, 0.1)), extra=info,
        schedule=str(ctx.param("schedule", "linear")),
    )
