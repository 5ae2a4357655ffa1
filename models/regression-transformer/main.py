"""Regression Transformer: the property as masked digit tokens in front of a SELFIES, predicted by XLNet.

Each training molecule becomes ``[CLS] <y> s d1 d0 _._ d-1 d-2 d-3 | SELFIES... [SEP]`` where the property
is standardised on TRAIN only (BOOM min-max scaled with the OOD range included) and written as a sign
token and five place-valued digit tokens (``_7_-1_`` = 7 at the first decimal place; two integer places),
so |z| up to 99.999 is expressible: an OOD tail many standard deviations from the train mean (a single
integer place stopped at 9.999) is not ruled out by the encoding.  The six numeric tokens are replaced by
[MASK] and an XLNet language model (XLNetLMHeadModel) predicts them; a prediction is the
arg-max digit of each place (among the tokens valid there), decoded to a number.  Checkpoints are
chosen on a seeded validation slice of train (BOOM selected on training data).  Simplifications:
only the property-prediction objective (no alternating conditional-generation objective, no
self-consistency loss), [MASK] replacement with full bidirectional attention instead of a permutation
mask, and no numerical-encoding embeddings; documented in bench/models/regression-transformer.md.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import boom_kit
from boom_kit.checkpoints import CheckpointError, checkpoint_label, load_pretrained
from boom_kit.tokenize import MASK, fit_tokenizer, save_vocab
from boom_kit.torch_loop import count_parameters, fit, predict_in_batches

INTEGER_PLACES = 2  # |z| < 100 train standard deviations
PLACES = tuple(range(INTEGER_PLACES - 1, -4, -1))  # (1, 0, -1, -2, -3)
SIGNS = ("_+_", "_-_")
DIGITS = {p: tuple(f"_{d}_{p}_" for d in range(10)) for p in PLACES}
PROPERTY_TOKENS = ("<y>", *SIGNS, *[t for p in PLACES for t in DIGITS[p]], "_._", "|")
# [CLS] <y> sign d1 d0 _._ d-1 d-2 d-3 | : the sign and every digit are numeric slots, the point is not
NUMERIC_SLOTS = (2, *range(3, 3 + INTEGER_PLACES), *range(4 + INTEGER_PLACES, 7 + INTEGER_PLACES))
PREFIX = 8 + INTEGER_PLACES
ZMAX = 10.0**INTEGER_PLACES - 0.001


def to_selfies(smiles: list[str]) -> list[str | None]:
    import selfies as sf

    sf.set_semantic_constraints("hypervalent")  # the 10k set's N(=O)=O nitro groups are pentavalent N
    out: list[str | None] = []
    for s in smiles:
        try:
            out.append(sf.encoder(s))
        except Exception:  # noqa: BLE001 - one unencodable molecule must not end the run
            out.append(None)
    return out


def number_tokens(z: float) -> list[str]:
    """Sign, the integer digits, the point and three decimals of ``z`` (clipped to +-ZMAX, rounded to 3 decimals)."""
    q = int(round(min(ZMAX, abs(float(z))) * 1000))
    digits = [(q // 10 ** (p + 3)) % 10 for p in PLACES]
    sign = SIGNS[1] if z < 0 and q > 0 else SIGNS[0]
    ints = [DIGITS[p][d] for p, d in zip(PLACES, digits) if p >= 0]
    decimals = [DIGITS[p][d] for p, d in zip(PLACES, digits) if p < 0]
    return [sign, *ints, "_._", *decimals]


def decode(choice: np.ndarray) -> np.ndarray:
    """(n, 1 + len(PLACES)) class indices (sign, then each place's digit) -> numbers."""
    sign = np.where(choice[:, 0] == 1, -1.0, 1.0)
    return sign * sum(choice[:, 1 + k] * 10.0**p for k, p in enumerate(PLACES))


def slot_classes(tokenizer: Any) -> list[list[int]]:
    """Candidate token ids of each numeric slot: the signs, then the ten digits of each place."""
    vocab = tokenizer.get_vocab()
    return [[vocab[t] for t in SIGNS]] + [[vocab[t] for t in DIGITS[p]] for p in PLACES]


def encode(tokenizer: Any, selfies: list[str], values: np.ndarray | None, max_length: int) -> tuple[Any, Any, Any, int]:
    """(input_ids, attention_mask, target class per numeric slot, n_truncated); the numeric slots of
    the input are always [MASK] (the targets never leak into the input)."""
    import torch

    vocab = tokenizer.get_vocab()
    classes = slot_classes(tokenizer)
    body = tokenizer(list(selfies), add_special_tokens=False)["input_ids"]
    n_cut = sum(1 for b in body if len(b) > max_length - PREFIX - 1)
    rows, targets = [], []
    for i, b in enumerate(body):
        num = number_tokens(values[i]) if values is not None else \
            [MASK] * (1 + INTEGER_PLACES) + ["_._"] + [MASK] * 3
        ids = [tokenizer.cls_token_id] + [vocab[t] for t in ["<y>", *num, "|"]] + b[: max_length - PREFIX - 1] + [tokenizer.sep_token_id]
        targets.append([ids[k] for k in NUMERIC_SLOTS])
        for k in NUMERIC_SLOTS:
            ids[k] = vocab[MASK]
        rows.append(ids)
    width = max(len(r) for r in rows)
    ids_t = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids_t[i, : len(r)], att[i, : len(r)] = torch.tensor(r), 1
    cls_idx = torch.tensor([[c.index(t) if t in c else 0 for c, t in zip(classes, tg)] for tg in targets])
    return ids_t, att, cls_idx, n_cut


def build(param: Callable[[str, Any], Any], train_selfies: list[str], vocab_path: Any = None) -> tuple[Any, Any, dict]:
    from transformers import XLNetConfig, XLNetLMHeadModel

    source = param("pretrained")
    if source:
        model, tokenizer, _ = load_pretrained(XLNetLMHeadModel, str(source))
        lacking = [t for t in PROPERTY_TOKENS if t not in tokenizer.get_vocab()]
        if lacking:
            raise CheckpointError(f"pretrained checkpoint {source!r}: tokenizer lacks the property tokens {lacking[:3]}")
        if vocab_path is not None:
            save_vocab(tokenizer.get_vocab(), vocab_path)
        return model.float(), tokenizer, {"pretrained": checkpoint_label(str(source))}
    tokenizer = fit_tokenizer(train_selfies, vocab_path, extra_tokens=PROPERTY_TOKENS)
    config = XLNetConfig(
        vocab_size=len(tokenizer), d_model=param("d_model"), n_layer=param("num_layers"),
        n_head=param("num_heads"), d_inner=param("d_inner"), dropout=param("dropout"),
        mem_len=None, use_mems_eval=False, use_mems_train=False, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    return XLNetLMHeadModel(config), tokenizer, {"pretrained": None}


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    import torch

    device, max_length = ctx.device, ctx.param("max_length")
    with ctx.stopwatch("featurise"):
        train_sf, test_sf = to_selfies(ctx.train["smiles"].tolist()), to_selfies(ctx.test["smiles"].tolist())
    keep = np.array([s is not None for s in train_sf])
    if not keep.all():
        ctx.note(f"{int((~keep).sum())} training molecules have no SELFIES and are left out")
    y_all = ctx.train["y"].to_numpy(dtype=np.float64)
    selfies_train = [s for s in train_sf if s is not None]
    y = y_all[keep]
    tr_all, va_all = boom_kit.validation_split(len(y_all), ctx.seed)  # the task's slice, minus unencodable rows
    position = np.cumsum(keep) - 1
    tr, va = position[tr_all[keep[tr_all]]], position[va_all[keep[va_all]]]
    model, tokenizer, info = build(ctx.param, selfies_train, ctx.artefact("vocab.json"))
    if info["pretrained"]:
        ctx.note(f"XLNet and tokenizer loaded from {info['pretrained']}")
    scaler = boom_kit.TargetScaler().fit(y[tr])
    z = scaler.transform(y)
    if np.abs(z).max() > ZMAX:
        ctx.note(f"{int((np.abs(z) > ZMAX).sum())} training targets beyond +-{ZMAX} standard deviations are clipped")

    with ctx.stopwatch("featurise"):
        ids, att, target_cls, cut = encode(tokenizer, selfies_train, z, max_length)
        test_ids, test_att, _, cut_test = encode(tokenizer, [s or "" for s in test_sf], None, max_length)
    if cut or cut_test:
        ctx.note(f"{cut} train and {cut_test} test SELFIES truncated to {max_length} tokens")
    class_ids = [torch.tensor(c, device=device) for c in slot_classes(tokenizer)]
    model = model.to(device)

    def slot_logits(all_ids: torch.Tensor, all_att: torch.Tensor, rows: np.ndarray) -> list[torch.Tensor]:
        a = all_att[rows]
        width = int(a.sum(1).max())
        b_ids, b_att = all_ids[rows, :width].to(device), a[:, :width].to(device).float()
        if device == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=b_ids, attention_mask=b_att).logits
        else:
            logits = model(input_ids=b_ids, attention_mask=b_att).logits
        return [logits[:, k].float().index_select(-1, c) for k, c in zip(NUMERIC_SLOTS, class_ids)]

    def step(idx: np.ndarray) -> torch.Tensor:
        rows = tr[idx]
        tgt = target_cls[rows].to(device)
        logits = slot_logits(ids, att, rows)
        return sum(torch.nn.functional.cross_entropy(lg, tgt[:, j]) for j, lg in enumerate(logits)) / len(logits)

    def predict(all_ids: torch.Tensor, all_att: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        choice = torch.stack([lg.argmax(-1) for lg in slot_logits(all_ids, all_att, rows)], dim=1)
        return torch.tensor(decode(choice.cpu().numpy()))

    batch_size, epochs = ctx.param("batch_size"), ctx.param("epochs")
    optimizer = torch.optim.AdamW(model.parameters(), lr=ctx.param("lr"), weight_decay=ctx.param("weight_decay"))
    total = max(1, epochs * int(np.ceil(len(tr) / batch_size)))
    n_warm = int(ctx.param("warmup") * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, n_warm) if s < n_warm else max(0.0, (total - s) / max(1, total - n_warm)))
    with ctx.stopwatch("train"):
        result = fit(model, optimizer, step, lambda: predict_in_batches(lambda i: predict(ids, att, va[i]), len(va), 2 * batch_size),
                     np.clip(z[va], -ZMAX, ZMAX), n_train=len(tr), batch_size=batch_size, epochs=epochs, seed=ctx.seed,
                     scheduler=scheduler, scheduler_per="step", clip=1.0)
    with ctx.stopwatch("predict"):
        order = np.arange(len(test_sf))
        z_pred = predict_in_batches(lambda i: predict(test_ids, test_att, order[i]), len(order), 2 * batch_size)
    missing = np.array([s is None for s in test_sf])
    if missing.any():
        z_pred[missing] = 0.0  # the training mean
        ctx.note(f"{int(missing.sum())} test molecules have no SELFIES and are predicted as the training mean")
    return boom_kit.Output(
        y_pred=scaler.inverse(z_pred), n_parameters=count_parameters(model), epochs=result.epochs,
        best_epoch=result.best_epoch, pretrained=info["pretrained"],
        extra={"best_val_rmse_scaled": result.best_val_rmse, "per_epoch_s": result.per_epoch_s,
               "vocab_size": len(tokenizer), "z_range_train": [float(z[tr].min()), float(z[tr].max())], **info},
    )


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["transformers", "tokenizers", "selfies"])
