"""Validation of NL-MTP's policy estimator on the real 10k_csd molecules (issue 20).

Parts (``--parts``, all by default; each one replaces its own key in the output JSON, so parts can run apart):

- ``positivity``: positivity of the exposure A = exact molecular weight given two contexts, the predictor's
  features (Morgan + MACCS + 8 descriptors) and the policy context X (N, O, ring, aromatic-ring counts + MACCS):
  ridge residual SD of A, and the estimator's positivity verdict for delta = one CH2 (classifier ratio).
- ``real``: real hof, the estimate with its interval over all 10k molecules (classifier ratio, and the MDN ratio
  for comparison), next to the mean hof change of the CH2-homologue pairs of the set.
- ``synthetic``: Y simulated from the real (A, X) with a known effect of the shift; each seed draws n molecules
  with replacement (i.i.d. from the 10k population; a molecule drawn twice stays in one fold), redraws the
  noise, fits Q once and both ratio models (classifier, MDN) on the same folds; bias, SD, mean SE and 95%
  coverage (with its Clopper-Pearson interval) against the population truth.
- ``known_ratio``: the same with a simulated exposure A* = mu(X) + sigma(X) e (Gaussian, so the true density
  ratio is known): the error of each ratio model's log ratio against the truth, and coverage.
- ``q_compare``: HGB vs the fast-weight transformer (``nuisance.transformer_q``) as Q on the synthetic truth:
  RMSE of Q(A, X), Q(A + d, X) and of the contrast against f, plug-in and one-step bias (classifier ratio).

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/nl_mtp_validation.py [--parts synthetic] [--seeds 40]
Writes bench/results/nl_mtp_validation.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "models" / "nl-mtp"))
sys.path.insert(0, str(REPO / "models" / "_kit"))

import estimator  # noqa: E402
import nuisance  # noqa: E402

CH2 = 14.01565
RAW = Path(os.environ.get("BOOM_RAW_DIR", REPO.parent / "shared" / "data" / "llnl-chno-10k"))
PARTS = ("positivity", "real", "synthetic", "known_ratio", "q_compare")
NOISE_SD = 10.0


def featurise(smiles: list[str], cache: Path | None) -> dict[str, np.ndarray]:
    if cache is not None and cache.exists():
        return dict(np.load(cache))
    import main as nl_main  # the model's own featuriser: the same X and A as a run

    rows = [nl_main.featurise_one((s, False, 16)) for s in smiles]
    bits, desc, mw, _, _, comp = zip(*rows)
    d = {"bits": np.stack(bits), "desc": np.stack(desc), "mw": np.asarray(mw), "comp": np.stack(comp)}
    out = {"x_policy": nl_main.policy_context(d), "x_full": np.c_[d["bits"], d["desc"]].astype(np.float32),
           "mw": d["mw"]}
    if cache is not None:
        np.savez(cache, **out)
    return out


def ridge_oof(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    return cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 13)), x, a, cv=5)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list[float]:
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf((1 - level) / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - (1 - level) / 2, k + 1, n - k))
    return [lo, hi]


def homologue_pairs(smiles: list[str]) -> list[tuple[int, int]]:
    """(lighter, heavier) index pairs: the heavier is the lighter with one H on a carbon replaced by CH3."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    index = {Chem.MolToSmiles(m): i for i, m in enumerate(mols) if m is not None}
    pairs = set()
    for i, mol in enumerate(mols):
        if mol is None:
            continue
        for atom in mol.GetAtoms():
            if atom.GetSymbol() != "C" or atom.GetTotalNumHs() == 0:
                continue
            rw = Chem.RWMol(mol)
            new = rw.AddAtom(Chem.Atom(6))
            rw.AddBond(atom.GetIdx(), new, Chem.BondType.SINGLE)
            try:
                Chem.SanitizeMol(rw)
            except Exception:
                continue
            j = index.get(Chem.MolToSmiles(rw))
            if j is not None and j != i:
                pairs.add((i, j))
    return sorted(pairs)


def outcome_truth(a: np.ndarray, x: np.ndarray, rng: np.random.Generator):
    """A known f(a, x): nonlinear in x, quadratic in a with an a-by-x interaction (scales like hof)."""
    z = (x - x.mean(0)) / (x.std(0) + 1e-8)
    w = rng.normal(size=z.shape[1]) / np.sqrt(z.shape[1])
    h = 40.0 * np.tanh(z @ w)
    slope = -60.0 + 20.0 * np.tanh(z[:, 0])  # per SD of A; a CH2 is about 0.12 SD

    def f(aa: np.ndarray, i: np.ndarray) -> np.ndarray:
        v = (aa - a.mean()) / a.std()
        return h[i] + slope[i] * v + 8.0 * v ** 2

    every = np.arange(len(a))
    return f, float(np.mean(f(a + CH2, every) - f(a, every)))


def ratio_models(seed: int, with_mdn: bool) -> dict:
    models = {"classifier": nuisance.classifier_ratio(seed=seed),  # the model's: with the residual feature
              "classifier_plain": nuisance.classifier_ratio(residual_feature=False, seed=seed)}  # before 2026-12-03
    if with_mdn:  # the MDN costs 3-5x the classifier: the comparison runs on the first --mdn-seeds seeds
        models["mdn"] = nuisance.mdn_ratio(n_components=4, epochs=200, seed=seed)
    return models


def one_seed(x, a, f, seed: int, n: int, k: int, rule, true_log_ratio=None, with_mdn: bool = True) -> dict:
    """Draw n molecules, simulate Y, cross-fit Q once and every ratio model on the same folds."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=n)
    xs, as_ = x[idx], a[idx]
    y = f(as_, idx) + NOISE_SD * rng.normal(size=n)
    fold = estimator.folds(n, k, seed, idx)
    q_obs, q_shift = np.empty(n), np.empty(n)
    models = ratio_models(seed, with_mdn)
    lr = {m: np.empty(n) for m in models}
    gate = {m: np.empty(n) for m in models}
    secs = {m: 0.0 for m in ("q", *models)}
    for fo in range(k):
        fit, ev = fold != fo, fold == fo
        t0 = time.perf_counter()
        q = nuisance.hgb_q(max_iter=150, seed=seed)(xs[fit], as_[fit], y[fit])
        q_obs[ev], q_shift[ev] = q(xs[ev], as_[ev]), q(xs[ev], as_[ev] + CH2)
        secs["q"] += time.perf_counter() - t0
        for name, fit_ratio in models.items():
            t0 = time.perf_counter()
            r = fit_ratio(xs[fit], as_[fit], CH2)
            lr[name][ev], gate[name][ev] = r(xs[ev], as_[ev]), -r(xs[ev], as_[ev] + CH2)
            secs[name] += time.perf_counter() - t0
    if true_log_ratio is not None:  # the oracle: the same Q with the true ratio (which nuisance carries the error?)
        lr["true_ratio"] = true_log_ratio(as_, idx)
        gate["true_ratio"] = -true_log_ratio(as_ + CH2, idx)
    ares = as_ - estimator_ridge_oof(xs, as_, fold)
    row = {"seed": seed, "plug_in": float((q_shift - q_obs).mean()), "seconds": secs,
           "q_rmse": float(np.sqrt(np.mean((q_obs - f(as_, idx)) ** 2)))}
    for name in lr:  # every ratio model, and the oracle when the true ratio is known
        pos = estimator.positivity(lr[name], gate[name], rule, CH2 / float(ares.std()))
        fit = estimator.one_step(y, q_obs, q_shift, np.exp(np.minimum(lr[name], math.log(rule.clip))))
        row[name] = {"effect": fit["effect"], "se": fit["se"], "lo": fit["ci95"][0], "hi": fit["ci95"][1],
                     "supported": pos["supported"], "ess_share": pos["ess_share"],
                     "share_beyond_clip": pos["share_beyond_clip"], "share_gate_excluded": pos["share_gate_excluded"],
                     "mean_ratio": float(np.exp(np.minimum(lr[name], math.log(rule.clip))).mean())}
        if true_log_ratio is not None:
            t = true_log_ratio(as_, idx)
            clipped = lambda v: np.exp(np.minimum(v, math.log(rule.clip)))  # noqa: E731  (what the estimator uses)
            row[name]["ratio_rmse"] = float(np.sqrt(np.mean((clipped(lr[name]) - clipped(t)) ** 2)))
            row[name]["log_ratio_median_abs_error"] = float(np.median(np.abs(lr[name] - t)))
            row[name]["true_ess_share"] = float(np.exp(t).sum() ** 2 / np.exp(2 * t).sum() / n)
    return row


def estimator_ridge_oof(x: np.ndarray, a: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold ridge prediction of A (the estimator's model-free positivity check), same folds."""
    from sklearn.linear_model import Ridge

    pred = np.empty(len(a))
    for fo in np.unique(fold):
        pred[fold == fo] = Ridge(alpha=1.0).fit(x[fold != fo], a[fold != fo]).predict(x[fold == fo])
    return pred


def summarise(rows: list[dict], truth: float, name: str) -> dict:
    df = pd.DataFrame([r[name] | {"seed": r["seed"]} for r in rows if name in r])
    ok = df[df.supported]
    hits = int(((ok.lo <= truth) & (truth <= ok.hi)).sum())
    out = {"seeds": len(df), "accepted": len(ok), "covered": hits,
           "coverage95_accepted": hits / len(ok) if len(ok) else None,
           "coverage95_accepted_ci": clopper_pearson(hits, len(ok)) if len(ok) else None,
           "coverage95_all_refused_as_miss": hits / len(df),
           "bias_accepted": float(ok.effect.mean() - truth) if len(ok) else None,
           "bias_se": float(ok.effect.std(ddof=1) / math.sqrt(len(ok))) if len(ok) > 1 else None,
           "sd_effect_accepted": float(ok.effect.std(ddof=1)) if len(ok) > 1 else None,
           "mean_se_accepted": float(ok.se.mean()) if len(ok) else None,
           "median_ess_share": float(df.ess_share.median()), "max_share_beyond_clip": float(df.share_beyond_clip.max()),
           "max_share_gate_excluded": float(df.share_gate_excluded.max()), "mean_ratio_mean": float(df.mean_ratio.mean())}
    if "ratio_rmse" in df:
        out |= {"ratio_rmse_mean": float(df.ratio_rmse.mean()),
                "log_ratio_median_abs_error_mean": float(df.log_ratio_median_abs_error.mean()),
                "true_ess_share_mean": float(df.true_ess_share.mean())}
    return out


def study(x, a, f, truth, seeds: int, n: int, k: int, true_log_ratio=None, label="synthetic",
          progress=None, mdn_seeds: int = 10**9, done: list | None = None, seed_start: int = 0) -> dict:
    """``progress(summary)`` is called after every seed (the JSON then holds the seeds done so far); ``done``:
    rows of an earlier run with the same n and k, whose seeds are not run again (--resume)."""
    rule = estimator.SupportRule()
    rows = [r for r in (done or []) if r["seed"] < seeds]
    for seed in sorted(set(range(seed_start, seeds)) - {r["seed"] for r in rows}):
        rows.append(one_seed(x, a, f, seed, n, k, rule, true_log_ratio, with_mdn=seed < mdn_seeds))
        r = rows[-1]
        print(f"{label} seed {seed}: truth {truth:+.3f} plug-in {r['plug_in']:+.3f} " + " ".join(
            f"{m} {r[m]['effect']:+.3f} [{r[m]['lo']:+.3f}, {r[m]['hi']:+.3f}]{'' if r[m]['supported'] else ' refused'}"
            for m in ("classifier", "classifier_plain", "mdn", "true_ratio") if m in r), flush=True)
        if progress is not None and seed >= 1:
            progress(summarise_study(rows, truth, n, k))
    return summarise_study(rows, truth, n, k)


def summarise_study(rows: list[dict], truth: float, n: int, k: int) -> dict:
    plug = np.array([r["plug_in"] for r in rows])
    return {"truth": truth, "n": n, "k_folds": k, "seeds": len(rows), "noise_sd": NOISE_SD,
            "q": "hgb_q(max_iter=150)", "ratio_models": {"classifier": "classifier_ratio() defaults",
                                                        "classifier_plain": "classifier_ratio(residual_feature=False)",
                                                        "mdn": "mdn_ratio(n_components=4, epochs=200)"},
            "plug_in": {"bias": float(plug.mean() - truth), "sd": float(plug.std(ddof=1))},
            "classifier": summarise(rows, truth, "classifier"),
            "classifier_plain": summarise(rows, truth, "classifier_plain") if any("classifier_plain" in r for r in rows)
            else None,
            "mdn": summarise(rows, truth, "mdn") if any("mdn" in r for r in rows) else None,
            "true_ratio": summarise(rows, truth, "true_ratio") if any("true_ratio" in r for r in rows) else None,
            "q_rmse_mean": float(np.mean([r["q_rmse"] for r in rows])), "runs": rows}


def known_ratio_world(x: np.ndarray, a: np.ndarray):
    """A simulated exposure with a known Gaussian conditional density given the real X."""
    mu = ridge_oof(x, a)
    z0 = (x[:, 0] - x[:, 0].mean()) / (x[:, 0].std() + 1e-8)
    sigma = float(np.std(a - mu)) * np.exp(0.3 * np.tanh(z0))
    a_star = mu + sigma * np.random.default_rng(999).normal(size=len(a))

    def true_log_ratio(aa: np.ndarray, i: np.ndarray) -> np.ndarray:
        return (2 * CH2 * (aa - mu[i]) - CH2 ** 2) / (2 * sigma[i] ** 2)

    return a_star, true_log_ratio


def q_compare(x, a, f, truth, seeds: int, n: int, k: int, epochs: int) -> dict:
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(a), size=n)
        xs, as_ = x[idx], a[idx]
        y = f(as_, idx) + NOISE_SD * rng.normal(size=n)
        fold = estimator.folds(n, k, seed, idx)
        q = {m: (np.empty(n), np.empty(n)) for m in ("hgb", "transformer_obs_world", "transformer_fast_weights")}
        lr, secs = np.empty(n), {"hgb": 0.0, "transformer": 0.0}
        for fo in range(k):
            fit, ev = fold != fo, fold == fo
            xe, ae = xs[ev], as_[ev]
            t0 = time.perf_counter()
            h = nuisance.hgb_q(max_iter=150, seed=seed)(xs[fit], as_[fit], y[fit])
            secs["hgb"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            tq = nuisance.transformer_q(CH2, epochs=epochs, seed=seed)(xs[fit], as_[fit], y[fit])
            secs["transformer"] += time.perf_counter() - t0
            q["hgb"][0][ev], q["hgb"][1][ev] = h(xe, ae), h(xe, ae + CH2)
            q["transformer_obs_world"][0][ev], q["transformer_obs_world"][1][ev] = tq(xe, ae), tq(xe, ae + CH2)
            q["transformer_fast_weights"][0][ev], q["transformer_fast_weights"][1][ev] = tq(xe, ae), tq.shifted(xe, ae)
            lr[ev] = nuisance.classifier_ratio(seed=seed)(xs[fit], as_[fit], CH2)(xe, ae)
        f_obs, f_shift = f(as_, idx), f(as_ + CH2, idx)
        ratio = np.exp(np.minimum(lr, math.log(20.0)))
        row = {"seed": seed, "seconds": secs}
        for m, (qo, qs) in q.items():
            fit = estimator.one_step(y, qo, qs, ratio)
            row[m] = {"rmse_q_obs": float(np.sqrt(np.mean((qo - f_obs) ** 2))),
                      "rmse_q_shift": float(np.sqrt(np.mean((qs - f_shift) ** 2))),
                      "rmse_contrast": float(np.sqrt(np.mean(((qs - qo) - (f_shift - f_obs)) ** 2))),
                      "plug_in": fit["plug_in"], "one_step": fit["effect"], "se": fit["se"],
                      "covered": bool(fit["ci95"][0] <= truth <= fit["ci95"][1])}
        rows.append(row)
        print(f"q_compare seed {seed}: " + " ".join(f"{m} rmse {row[m]['rmse_q_obs']:.2f} plug {row[m]['plug_in']:+.3f} "
                                                    f"one-step {row[m]['one_step']:+.3f}" for m in q), flush=True)
    summary = {}
    for m in ("hgb", "transformer_obs_world", "transformer_fast_weights"):
        df = pd.DataFrame([r[m] for r in rows])
        summary[m] = {"rmse_q_obs": float(df.rmse_q_obs.mean()), "rmse_q_shift": float(df.rmse_q_shift.mean()),
                      "rmse_contrast": float(df.rmse_contrast.mean()), "bias_plug_in": float(df.plug_in.mean() - truth),
                      "bias_one_step": float(df.one_step.mean() - truth), "mean_se": float(df.se.mean()),
                      "covered": int(df.covered.sum())}
    return {"truth": truth, "n": n, "k_folds": k, "seeds": seeds, "transformer_epochs": epochs,
            "transformer": "transformer_q defaults: 2 layers x 64, FFN 128, 4 heads, LoR rank 2 on the last layer",
            "summary": summary, "runs": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--known-seeds", type=int, default=20)
    ap.add_argument("--q-seeds", type=int, default=3)
    ap.add_argument("--q-epochs", type=int, default=15)
    ap.add_argument("--mdn-seeds", type=int, default=10, help="run the MDN ratio on the first this many seeds")
    ap.add_argument("--resume", action="store_true", help="keep the seeds an earlier run of the part stored")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed to run (split a study over processes)")
    ap.add_argument("--real-ratios", default="classifier,mdn", help="ratio models for the real hof estimate")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--features", type=Path, default=None, help="npz cache of the featurised 10k set")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "nl_mtp_validation.json")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {unknown}; choose from {','.join(PARTS)}")
    import torch

    torch.set_num_threads(1)
    data = pd.read_csv(RAW / "10k_dft_hof_data.csv")
    feat = featurise(data.smiles.tolist(), args.features)
    x, a, y = feat["x_policy"], feat["mw"], data.hof_s.to_numpy(float)

    def save(key: str, value) -> None:  # read-modify-replace, so parts run in parallel keep each other's keys
        current = json.loads(args.out.read_text()) if args.out.exists() else {}
        tmp = args.out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(current | {key: value, "n_molecules": len(y)}, indent=2))
        os.replace(tmp, args.out)

    if "positivity" in parts:
        t0 = time.perf_counter()
        result = {"sd_a": float(a.std())}
        for name, xx in (("predictor_features", feat["x_full"]), ("policy_context", x)):
            fold = estimator.folds(len(a), 3, 0)
            lr, gate = np.empty(len(a)), np.empty(len(a))
            for fo in range(3):
                r = nuisance.classifier_ratio(seed=0)(xx[fold != fo], a[fold != fo], CH2)
                ev = fold == fo
                lr[ev], gate[ev] = r(xx[ev], a[ev]), -r(xx[ev], a[ev] + CH2)
            sd = float(np.std(a - ridge_oof(xx, a)))
            result[name] = {"ridge_residual_sd_da": sd,
                            "positivity": estimator.positivity(lr, gate, estimator.SupportRule(), CH2 / sd)}
            print(name, sd, result[name]["positivity"]["reasons"], flush=True)
        save("positivity_by_context", result | {"seconds": time.perf_counter() - t0})
    if "real" in parts:
        t0 = time.perf_counter()
        real = {}
        ratios = {"classifier": nuisance.classifier_ratio(seed=0),
                  "mdn": nuisance.mdn_ratio(n_components=8, seed=0)}
        for name in args.real_ratios.split(","):
            fit_ratio = ratios[name]
            r = estimator.estimate(x, a, y, CH2, nuisance.hgb_q(seed=0), fit_ratio, 5, 0)
            nuis = r.pop("nuisances")
            real[name] = r | {"q_oof_rmse": float(np.sqrt(np.mean((nuis["q_obs"] - y) ** 2)))}
            print("hof real", name, r["effect"], r["ci95"], r["reason"], flush=True)
        pairs = homologue_pairs(data.smiles.tolist())
        lo_i, hi_i = np.array(pairs).T
        diff = y[hi_i] - y[lo_i]
        homologues = {"n_pairs": len(pairs), "mean": float(diff.mean()), "median": float(np.median(diff)),
                      "sd": float(diff.std(ddof=1)), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                      "plug_in_on_lighter": float((nuis["q_shift"] - nuis["q_obs"])[lo_i].mean())}
        print("homologues:", homologues, flush=True)
        save("hof_real", real | {"seconds": time.perf_counter() - t0})
        save("homologues", homologues)
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}

    def done(key: str) -> list:
        old = stored.get(key, {})
        same = old.get("n") == args.n and old.get("k_folds") == args.k
        return old.get("runs", []) if args.resume and same else []

    f, truth = outcome_truth(a, x, np.random.default_rng(12345))
    if "synthetic" in parts:
        s = study(x, a, f, truth, args.seeds, args.n, args.k, progress=lambda v: save("synthetic", v),
                  mdn_seeds=args.mdn_seeds, done=done("synthetic"), seed_start=args.seed_start)
        save("synthetic", s)
        for m in ("classifier", "classifier_plain", "mdn"):
            print(m, s[m], flush=True)
    if "known_ratio" in parts:
        a_star, true_lr = known_ratio_world(x, a)
        f_star, truth_star = outcome_truth(a_star, x, np.random.default_rng(12345))
        note = {"exposure": "A* = ridge(X) + sigma(X) e, sigma = residual SD x exp(0.3 tanh(z_N)), e ~ N(0, 1)"}
        s = study(x, a_star, f_star, truth_star, args.known_seeds, args.n, args.k, true_lr, "known_ratio",
                  progress=lambda v: save("known_ratio", v | note), mdn_seeds=args.mdn_seeds,
                  done=done("known_ratio"))
        save("known_ratio", s | note)
        for m in ("classifier", "classifier_plain", "mdn", "true_ratio"):
            print(m, s[m], flush=True)
    if "q_compare" in parts:
        save("q_compare", q_compare(x, a, f, truth, args.q_seeds, args.n, args.k, args.q_epochs))


if __name__ == "__main__":
    main()
