"""Validation of NL-MTP's policy estimator on the real 10k_csd molecules (issue 20).

1. Positivity of the exposure A = exact molecular weight given two contexts: the predictor's features
   (Morgan + MACCS + 8 descriptors) and the policy context X (N, O, ring, aromatic-ring counts + MACCS):
   ridge residual SD of A, and the estimator's positivity verdict for delta = one CH2.
2. Synthetic truth: Y simulated from the real (A, X) with a known effect of the shift; each seed draws n
   molecules with replacement (i.i.d. from the 10k population; a molecule drawn twice stays in one fold),
   redraws the noise, and runs the estimator; bias and 95%-interval coverage against the population truth.
3. Real hof: the estimate with its interval over all 10k molecules, next to the mean hof change of the
   CH2-homologue pairs of the set (one molecule is the other with an H on a carbon replaced by CH3).

    OMP_NUM_THREADS=1 .venv/bin/python bench/nl_mtp_validation.py [--seeds 20] [--n 2000]
Writes bench/results/nl_mtp_validation.json.
"""
from __future__ import annotations

import argparse
import json
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


def featurise(smiles: list[str]) -> dict[str, np.ndarray]:
    import main as nl_main  # the model's own featuriser: the same X and A as a run

    rows = [nl_main.featurise_one((s, False, 16)) for s in smiles]
    bits, desc, mw, _, _, comp = zip(*rows)
    d = {"bits": np.stack(bits), "desc": np.stack(desc), "mw": np.asarray(mw), "comp": np.stack(comp)}
    return d | {"x_policy": nl_main.policy_context(d), "x_full": np.c_[d["bits"], d["desc"]].astype(float)}


def ridge_residual_sd(x: np.ndarray, a: np.ndarray) -> float:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 13)), x, a, cv=5)
    return float(np.std(a - pred))


def ridge_q(x: np.ndarray, a: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import Ridge

    m = Ridge(alpha=1.0).fit(np.c_[a, x], y)
    return lambda xe, ae: m.predict(np.c_[ae, xe])


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


def synthetic_study(feat: dict, seeds: int, n: int, k: int) -> dict:
    x, a = feat["x_policy"], feat["mw"]
    f, truth = outcome_truth(a, x, np.random.default_rng(12345))
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(a), size=n)
        y = f(a[idx], idx) + 10.0 * rng.normal(size=n)
        t0 = time.perf_counter()
        r = estimator.estimate(x[idx], a[idx], y, CH2, nuisance.hgb_q(max_iter=150, seed=seed),
                               nuisance.mdn_g(n_components=4, epochs=200, seed=seed), k, seed, groups=idx)
        est = r["effect"] if r["effect"] is not None else r["effect_if_ignored"]
        lo, hi = r["ci95"] if r["ci95"] is not None else (np.nan, np.nan)
        rows.append({"seed": seed, "effect": est, "lo": lo, "hi": hi, "se": r["se"], "plug_in": r["plug_in"],
                     "supported": r["positivity"]["supported"], "ess_share": r["positivity"]["ess_share"],
                     "share_beyond_clip": r["positivity"]["share_beyond_clip"],
                     "share_gate_excluded": r["positivity"]["share_gate_excluded"], "s": time.perf_counter() - t0})
        print(f"seed {seed}: effect {est:+.3f} [{lo:+.3f}, {hi:+.3f}] truth {truth:+.3f} plug-in {r['plug_in']:+.3f}",
              flush=True)
    df = pd.DataFrame(rows)
    cover = ((df.lo <= truth) & (truth <= df.hi)).mean()
    return {"truth": truth, "n": n, "k_folds": k, "seeds": seeds, "noise_sd": 10.0,
            "bias_one_step": float(df.effect.mean() - truth), "sd_one_step": float(df.effect.std(ddof=1)),
            "mean_se": float(df.se.mean()), "coverage95": float(cover),
            "bias_plug_in": float(df.plug_in.mean() - truth), "sd_plug_in": float(df.plug_in.std(ddof=1)),
            "share_supported": float(df.supported.mean()), "seconds": float(df.s.sum()), "runs": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "nl_mtp_validation.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    data = pd.read_csv(RAW / "10k_dft_hof_data.csv")
    t0 = time.perf_counter()
    feat = featurise(data.smiles.tolist())
    y = data.hof_s.to_numpy(float)
    out: dict = {"featurise_s": time.perf_counter() - t0, "n_molecules": len(y)}
    a = feat["mw"]
    out["ridge_residual_sd_da"] = {"predictor_features": ridge_residual_sd(feat["x_full"], a),
                                   "policy_context": ridge_residual_sd(feat["x_policy"], a), "sd_a": float(a.std())}
    print("ridge residual SD", out["ridge_residual_sd_da"], flush=True)
    full = estimator.cross_fit(feat["x_full"], a, y, CH2, ridge_q, nuisance.mdn_g(n_components=8, epochs=100, seed=0), 5, 0)
    out["positivity_predictor_features"] = estimator.positivity(full["log_ratio"], full["log_gate"],
                                                                estimator.SupportRule(),
                                                                CH2 / float(full["a_residual"].std()))
    print("predictor features:", out["positivity_predictor_features"]["reasons"], flush=True)
    t1 = time.perf_counter()
    real = estimator.estimate(feat["x_policy"], a, y, CH2, nuisance.hgb_q(seed=0),
                              nuisance.mdn_g(n_components=8, seed=0), 5, 0)
    nuis = real.pop("nuisances")
    out["hof_real"] = real | {"seconds": time.perf_counter() - t1,
                              "q_oof_rmse": float(np.sqrt(np.mean((nuis["q_obs"] - y) ** 2)))}
    print("hof real:", real["effect"], real["ci95"], real["reason"], flush=True)
    pairs = homologue_pairs(data.smiles.tolist())
    lo_i, hi_i = np.array(pairs).T
    diff = y[hi_i] - y[lo_i]
    out["homologues"] = {"n_pairs": len(pairs), "mean": float(diff.mean()), "median": float(np.median(diff)),
                         "sd": float(diff.std(ddof=1)), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                         "plug_in_on_lighter": float((nuis["q_shift"] - nuis["q_obs"])[lo_i].mean())}
    print("homologues:", out["homologues"], flush=True)
    out["synthetic"] = synthetic_study(feat, args.seeds, args.n, args.k)
    s = out["synthetic"]
    print(f"synthetic: truth {s['truth']:.3f} bias {s['bias_one_step']:+.3f} coverage {s['coverage95']:.0%} "
          f"plug-in bias {s['bias_plug_in']:+.3f} ({s['seconds']:.0f} s)", flush=True)
    args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
