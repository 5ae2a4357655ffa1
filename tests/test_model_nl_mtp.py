"""NL-MTP: smoke runs through the local runner, the policy estimator (known effect recovered, a known density
ratio recovered by the classifier, deterministic exposure refused by the estimator and by the model's own
policy step, influence-function SE by hand, each positivity rule fails), every hyperparameter the code reads
declared in model.yaml, plus the network properties.

* the time-zero barrier: changing a post-TIME0 token leaves every pre-TIME0 output unchanged;
* gradients reach the fast weights U, V and the base weights;
* a policy-world forward pass leaves the base weights untouched (fast weights are applied functionally).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.conftest import REPO, model_module, smoke_run



def _load():
    """network, objective and main of this model."""
    return tuple(model_module("nl-mtp", name) for name in ("network", "objective", "main"))


def _tiny(seed: int = 0, n_context: int = 12, dropout: float = 0.0):
    network, _, _ = _load()
    torch.manual_seed(seed)
    model = network.NLMTP(n_context, n_envs=4, d_model=16, n_layers=3, n_heads=2, d_ff=32,
                          lor_layers=(1, 7, 11), lor_rank=2, n_components=3, n_desc=8, dropout=dropout)
    B = 5
    batch = dict(ctx=torch.randn(B, n_context), env=torch.randint(0, 4, (B,)), a=torch.randn(B))
    return model, batch


# ---------------------------------------------------------------- smoke runs (local runner, 1 epoch)

@pytest.mark.parametrize("prop", ["density", "homo"])
def test_smoke(prepared, prop):
    outcome = smoke_run("nl-mtp", prop, subset=60)
    report = json.loads((outcome.folder / "model_report.json").read_text())
    assert {"policy.json", "contrast.png", "ratios.png"} <= set(report["artefacts"])
    for name in report["artefacts"]:
        assert (outcome.folder / name).stat().st_size > 0
    policy = json.loads((outcome.folder / "policy.json").read_text())
    pos = policy["positivity"]
    assert 0.0 <= pos["share_gate_excluded"] <= 1.0 and 0.0 < pos["ess_share"] <= 1.0
    if pos["supported"]:
        lo, hi = policy["ci95"]
        assert lo <= policy["effect"] <= hi and policy["reason"] is None
    else:  # refused: no number, a reason
        assert policy["effect"] is None and policy["ci95"] is None and "insufficient support" in policy["reason"]
    for key in ("effect", "se", "ci95", "reason", "ess_share", "share_gate_excluded"):
        assert key in report["extra"]
    assert report["n_parameters"] > 0 and report["best_epoch"] == 1


# ---------------------------------------------------------------- the policy estimator

def _estimator():
    return model_module("nl-mtp", "estimator"), model_module("nl-mtp", "nuisance")


def _synthetic(seed: int, n: int, noise_sd: float):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    a = x @ np.array([1.0, -0.5, 0.3]) + noise_sd * rng.normal(size=n)
    y = 2.0 * a + np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.5 * a * x[:, 0] + 0.5 * rng.normal(size=n)
    return x, a, y


def test_recovers_known_effect_within_interval():
    est, nui = _estimator()
    x, a, y = _synthetic(0, 1500, 1.0)
    delta = 0.5
    truth = 2.0 * delta + 0.5 * delta * 0.0  # E[x0] = 0: theta = 2 * delta
    r = est.estimate(x, a, y, delta, nui.hgb_q(max_iter=200), nui.classifier_ratio(max_iter=100), k=3, seed=0)
    assert r["positivity"]["supported"], r["reason"]
    lo, hi = r["ci95"]
    assert lo <= truth <= hi, (r["effect"], r["ci95"])
    assert abs(r["effect"] - truth) < 0.1 and 0.0 < r["se"] < 0.05


def test_refuses_deterministic_exposure():
    est, nui = _estimator()
    x, a, y = _synthetic(1, 800, 0.0)  # A is a function of X: no unit can be shifted within support
    r = est.estimate(x, a, y, 0.5, nui.hgb_q(max_iter=50), nui.classifier_ratio(max_iter=200), k=2, seed=0)
    assert r["effect"] is None and r["ci95"] is None and r["se"] is None
    assert not r["positivity"]["supported"] and "insufficient support" in r["reason"]
    # the classifier separates observed from shifted exposures: the shifted exposure of most units is out of
    # support and a few ratios carry the weight
    assert r["positivity"]["share_gate_excluded"] > 0.5 and r["positivity"]["ess_share"] < 0.2
    assert r["positivity"]["shift_in_residual_sd"] > 100  # the model-free rule fails too


def test_classifier_ratio_recovers_known_gaussian_ratio():
    """A | x ~ N(x, 1): log g(a - d | x) / g(a | x) = d (a - x) - d^2 / 2, known exactly."""
    _, nui = _estimator()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4000, 1))
    a = x[:, 0] + rng.normal(size=4000)
    delta = 0.5
    log_ratio = nui.classifier_ratio(max_iter=200)(x, a, delta)
    xe = rng.normal(size=(2000, 1))
    ae = xe[:, 0] + rng.normal(size=2000)
    truth = delta * (ae - xe[:, 0]) - delta ** 2 / 2
    est = log_ratio(xe, ae)
    assert np.corrcoef(est, truth)[0, 1] > 0.85
    assert np.median(np.abs(est - truth)) < 0.25  # the true log ratio has SD 0.5; measured 0.16
    ratio = np.exp(est)
    assert abs(ratio.mean() - 1.0) < 0.1  # E[r(A, X)] = 1 under the observed law


class _PolicyCtx:
    """The two things policy_estimate needs from boom_kit.Context: typed params from model.yaml, notes."""

    def __init__(self, **overrides):
        from boom_schema.spec import load_spec

        self.values = dict(load_spec(REPO / "models" / "nl-mtp" / "model.yaml").defaults) | overrides
        self.seed, self.notes = 0, []

    def param(self, name):
        return self.values[name]

    def note(self, text):
        self.notes.append(text)


def test_run_without_support_reports_no_effect():
    """The model's policy step on molecules whose exposure the context determines: no effect, a reason, a note."""
    _, _, main = _load()
    rng = np.random.default_rng(0)
    n = 400
    comp = rng.integers(0, 4, size=(n, 4)).astype(float)
    bits = np.zeros((n, main.N_BITS), np.uint8)
    bits[:, 2048:] = rng.integers(0, 2, size=(n, 167))
    mw = 100.0 + 16.0 * comp[:, 1] + 14.0 * comp[:, 0] + 3.0 * bits[:, 2048:2060].sum(1)  # A = function of X
    tr = {"comp": comp, "bits": bits, "mw": mw}
    y = -0.5 * mw + rng.normal(size=n)
    ctx = _PolicyCtx(k_folds=2, q_max_iter=30, ratio_max_iter=30)
    policy = main.policy_estimate(ctx, tr, y, main.CH2_DA)
    assert policy["effect"] is None and policy["ci95"] is None and policy["se"] is None
    assert "insufficient support" in policy["reason"] and ctx.notes == [policy["reason"]]
    pos = policy["positivity"]
    assert not pos["supported"] and pos["reasons"]
    assert {"ess_share", "share_beyond_clip", "share_gate_excluded", "ratio_quantiles"} <= set(pos)
    assert np.isfinite(policy["effect_if_ignored"])  # computed, but not reported as the effect
    assert policy["interval_caveat"] == main.INTERVAL_CAVEAT and "below the spread" in policy["interval_caveat"]


def test_every_param_the_code_reads_is_declared():
    """ctx.param is strict (an undeclared name raises): each name read in main.py is in model.yaml, no inline
    defaults, and no declared default goes unread (precision is read by the kit)."""
    import re

    from boom_schema.spec import load_spec

    text = (REPO / "models" / "nl-mtp" / "main.py").read_text()
    read = set(re.findall(r'\bp(?:aram)?\("([a-z_0-9]+)"\)', text))
    read |= {f"w_{k}" for k in vars(model_module("nl-mtp", "objective").LossWeights())}
    assert not re.search(r'\bp(?:aram)?\("[a-z_0-9]+",', text), "inline default beside ctx.param"
    declared = set(load_spec(REPO / "models" / "nl-mtp" / "model.yaml").defaults)
    assert read - declared == set()
    assert declared - read == {"precision"}


def test_influence_function_se_by_hand():
    est, _ = _estimator()
    y = np.array([1.0, 2.0, 0.0, 3.0])
    q_obs = np.array([0.5, 2.5, 0.0, 2.0])
    q_shift = np.array([1.5, 3.0, 1.0, 2.5])
    r = np.array([2.0, 1.0, 0.5, 0.0])
    # units r*(y-q) + q_shift - y: 1.5, 0.5, 1.0, -0.5 -> mean 0.625; deviations .875 -.125 .375 -1.125
    out = est.one_step(y, q_obs, q_shift, r)
    assert out["effect"] == pytest.approx(0.625)
    var = (0.875 ** 2 + 0.125 ** 2 + 0.375 ** 2 + 1.125 ** 2) / 3
    assert out["se"] == pytest.approx(math.sqrt(var / 4))
    assert out["ci95"][1] - out["ci95"][0] == pytest.approx(2 * 1.959964 * math.sqrt(var / 4))
    assert out["plug_in"] == pytest.approx(0.75)


def test_positivity_rules_each_fail():
    est, _ = _estimator()
    rule = est.SupportRule(clip=20.0, min_ess_share=0.2, max_clip_share=0.02, max_gate_share=0.05)
    ok = est.positivity(np.zeros(100), np.zeros(100), rule)
    assert ok["supported"] and ok["ess_share"] == pytest.approx(1.0)
    lr = np.zeros(100)
    lr[:3] = 5.0  # ratio e^5 > 20 for 3%
    assert not est.positivity(lr, np.zeros(100), rule)["supported"]
    gate = np.zeros(100)
    gate[:6] = -4.0  # g(A+d|X)/g(A|X) = e^-4 < 1/20 for 6%
    bad = est.positivity(np.zeros(100), gate, rule)
    assert not bad["supported"] and bad["share_gate_excluded"] == pytest.approx(0.06)
    assert not est.positivity(np.zeros(100), np.zeros(100), rule, shift_sd=1.5)["supported"]  # A nearly fixed by X
    assert est.positivity(np.zeros(100), np.zeros(100), rule, shift_sd=0.5)["supported"]
    small = est.positivity(np.full(100, -3.0), np.zeros(100), rule)  # ratios all e^-3: ESS fine, mean 0.05
    assert small["ess_share"] == pytest.approx(1.0) and not small["supported"] and "mean density ratio" in small["reasons"][0]
    assert est.folds(10, 3, 0, groups=np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])).reshape(5, 2).std(axis=1).max() == 0


def test_spec_and_default_size():
    from boom_schema.spec import load_spec

    spec = load_spec(REPO / "models" / "nl-mtp" / "model.yaml")
    assert spec.gpu.value == "optional" and len(spec.tasks) == 10
    network, _, main = _load()
    d = spec.defaults
    model = network.NLMTP(main.N_BITS + len(main.DESCRIPTORS), d_model=d["d_model"], n_layers=d["n_layers"],
                          n_heads=d["n_heads"], d_ff=d["d_ff"], lor_rank=d["lor_rank"])
    n = sum(p.numel() for p in model.parameters())
    assert 38e6 < n < 44e6, n  # the brief's "about 41M"
    assert model.lor_layers == [3, 7, 11]


def test_lor_layers_clipped_to_existing():
    network, _, _ = _load()
    assert network.clip_layers([3, 7, 11], 2) == [1]
    assert network.clip_layers([3, 7, 11], 8) == [3, 7]
    model, _ = _tiny()
    assert model.lor_layers == [1, 2]
    assert [i for i, b in enumerate(model.blocks) if b.lor_modules()] == [1, 2]


# ---------------------------------------------------------------- time-zero barrier

@pytest.mark.parametrize("policy", [False, True])
def test_time_zero_barrier(policy):
    network, _, _ = _load()
    model, b = _tiny()
    model.eval()
    tokens = model.embed(b["ctx"], b["env"], b["a"], torch.full((5,), 0.3))
    with torch.no_grad():
        ref = model(**b, delta=0.3, policy=policy, tokens=tokens)
        for pos in (network.DO, network.PROBE):
            changed = tokens.clone()
            changed[:, pos] += torch.randn_like(changed[:, pos]) * 3.0
            out = model(**b, delta=0.3, policy=policy, tokens=changed)
            pre = slice(0, network.TIME0 + 1)
            torch.testing.assert_close(out["hidden"][:, pre], ref["hidden"][:, pre], rtol=0, atol=1e-6)
            torch.testing.assert_close(out["mdn"], ref["mdn"], rtol=0, atol=1e-6)
            # ...while the post-TIME0 outputs do see the change (the test can fail)
            assert (out["m"] - ref["m"]).abs().max() > 1e-4


def test_mask_shape_and_context_blind_to_exposure():
    network, _, _ = _load()
    mask = network.time_zero_mask()
    T0 = network.TIME0
    assert not mask[: T0 + 1, T0 + 1 :].any()  # nothing up to TIME0 sees a post token
    assert mask[T0 + 1 :, :].all()  # post tokens see everything
    model, b = _tiny()
    model.eval()
    with torch.no_grad():
        ref = model(**b, delta=0.3, policy=False)
        shifted = model(b["ctx"], b["env"], b["a"] + 1.0, delta=0.3, policy=False)
    torch.testing.assert_close(shifted["mdn"], ref["mdn"], rtol=0, atol=1e-6)  # propensity g(A|x) never sees A


def test_pre_time0_identical_across_worlds():
    network, _, _ = _load()
    model, b = _tiny()
    model.eval()
    with torch.no_grad():
        obs = model(**b, delta=0.3, policy=False)
        pol = model(**b, delta=0.3, policy=True)
    pre = slice(0, network.TIME0 + 1)
    torch.testing.assert_close(pol["hidden"][:, pre], obs["hidden"][:, pre], rtol=0, atol=1e-6)
    assert (pol["m"] - obs["m"]).abs().max() > 1e-4
    assert obs["alpha"] is None and ((pol["alpha"] >= 0) & (pol["alpha"] <= 1)).all()


# ---------------------------------------------------------------- fast weights

def _loss(model, b, with_policy=True):
    _, objective, _ = _load()
    obs = model(**b, delta=0.3, policy=False)
    pol = model(**b, delta=0.3, policy=True) if with_policy else None
    fast = sum(m.delta_frobenius() for m in model.lor_modules()) if with_policy else None
    loss, parts = objective.nl_mtp_loss(obs, pol, torch.randn(5), b["a"], b["env"], fast,
                                        torch.randn(5, 8) if with_policy else None, objective.LossWeights())
    return loss, parts


def test_gradients_reach_fast_and_base_weights():
    model, b = _tiny()
    loss, parts = _loss(model, b)
    assert set(parts) == {"observed", "nll", "rex", "desc", "fast"}  # no DR pseudo-outcome, no support BCE
    loss.backward()
    lors = model.lor_modules()
    assert len(lors) == 8  # Q, K, O, MLP-out on each of the two LoR layers
    for m in lors:
        for name, p in (("U", m.U), ("V", m.V), ("base", m.base.weight)):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.blocks[0].q.base.weight.grad.abs().sum() > 0
    assert model.alpha_net[0].weight.grad.abs().sum() > 0


def test_without_descriptor_target_the_fast_weights_get_no_gradient():
    """After desc_delta_epochs the policy world has no target: it is not run and its weights are not trained."""
    model, b = _tiny()
    loss, parts = _loss(model, b, with_policy=False)
    assert set(parts) == {"observed", "nll", "rex"}
    loss.backward()
    assert all(m.U.grad is None and m.V.grad is None for m in model.lor_modules())
    assert model.blocks[0].q.base.weight.grad.abs().sum() > 0


def test_policy_forward_leaves_base_weights_unchanged():
    model, b = _tiny(dropout=0.1)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    out = model(**b, delta=0.3, policy=True)
    out["m"].sum().backward()  # even with a backward pass (no optimiser step)
    with torch.no_grad():
        model.eval()
        model(**b, delta=0.3, policy=True)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    # the fast weights are real: the adapted map differs from the base one
    lor = model.lor_modules()[0]
    x = torch.randn(3, lor.base.in_features)
    assert not torch.allclose(lor(x, torch.ones(1)), lor(x))


# ---------------------------------------------------------------- featurisation

def test_ch2_extension_and_environment():
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    _, _, main = _load()
    for smiles in ["CC(C)OC(=O)c1ccc(cc1)N(=O)=O", "c1cc[nH]c1", "OCC#N", "C"]:
        mol = Chem.MolFromSmiles(smiles)
        ext = main.add_ch2(mol)
        assert ext is not None
        assert Descriptors.ExactMolWt(ext) - Descriptors.ExactMolWt(mol) == pytest.approx(main.CH2_DA, abs=1e-4)
    assert main.add_ch2(Chem.MolFromSmiles("O=C=O")) is None  # no hydrogen to replace
    mol = Chem.MolFromSmiles("c1ccccc1CCO")
    env = main.environment(mol, 16)
    assert env == main.environment(Chem.MolFromSmiles("OCCc1ccccc1"), 16)  # same scaffold, same bucket
    assert 0 <= env < 16
    import hashlib

    assert env == int.from_bytes(hashlib.sha256(b"c1ccccc1").digest()[:8], "big") % 16  # stable, not hash()
    bits, desc, mw, env2, ext_desc, comp = main.featurise_one(("c1ccccc1CCO", True, 16))
    assert comp.tolist() == [0.0, 1.0, 1.0, 1.0]  # N, O, rings, aromatic rings
    assert bits.shape == (main.N_BITS,) and bits.dtype == np.uint8 and bits.sum() > 0
    assert desc.shape == (8,) and np.isfinite(ext_desc).all() and env2 == env
    assert ext_desc[main.DESCRIPTORS.index("HeavyAtomCount")] - desc[main.DESCRIPTORS.index("HeavyAtomCount")] == 1


def test_classifier_ratio_residual_feature_helps_when_the_location_spreads_over_many_columns():
    """A | x ~ N(x w, 1) with x w spread over 40 columns: the plain classifier has to rebuild x w from trees,
    the residual feature hands it a - m(x); its log ratios are closer to the truth (issue 20)."""
    _, nui = _estimator()
    rng = np.random.default_rng(5)
    w = rng.normal(size=40) / np.sqrt(40)
    x = rng.normal(size=(4000, 40))
    a = x @ w + rng.normal(size=4000)
    xe = rng.normal(size=(2000, 40))
    ae = xe @ w + rng.normal(size=2000)
    delta = 0.5
    truth = delta * (ae - xe @ w) - delta ** 2 / 2
    err = {flag: float(np.median(np.abs(nui.classifier_ratio(max_iter=200, residual_feature=flag)(x, a, delta)(xe, ae)
                                        - truth))) for flag in (True, False)}
    assert err[True] < 0.8 * err[False], err
    assert err[True] < 0.2, err
