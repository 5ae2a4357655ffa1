"""NL-MTP: smoke runs through the local runner, the policy estimator (known effect recovered, deterministic
exposure refused, influence-function SE by hand, each positivity rule fails), plus the network properties.

* the time-zero barrier: changing a post-TIME0 token leaves every pre-TIME0 output unchanged;
* gradients reach the fast weights U, V and the base weights;
* a policy-world forward pass leaves the base weights untouched (fast weights are applied functionally);
* importance weights are clipped at 20 and molecules with support gate s < 0.6 drop out of the policy terms.
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
    r = est.estimate(x, a, y, delta, nui.hgb_q(max_iter=200), nui.mdn_g(epochs=200), k=3, seed=0)
    assert r["positivity"]["supported"], r["reason"]
    lo, hi = r["ci95"]
    assert lo <= truth <= hi, (r["effect"], r["ci95"])
    assert abs(r["effect"] - truth) < 0.1 and 0.0 < r["se"] < 0.05


def test_refuses_deterministic_exposure():
    est, nui = _estimator()
    x, a, y = _synthetic(1, 800, 0.0)  # A is a function of X: no unit can be shifted within support
    r = est.estimate(x, a, y, 0.5, nui.hgb_q(max_iter=50), nui.mdn_g(epochs=150), k=2, seed=0)
    assert r["effect"] is None and r["ci95"] is None and r["se"] is None
    assert not r["positivity"]["supported"] and "insufficient support" in r["reason"]
    assert r["positivity"]["ess_share"] < 0.2 and r["positivity"]["share_gate_excluded"] > 0.5
    assert r["positivity"]["shift_in_residual_sd"] > 100  # the model-free rule fails too


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
            torch.testing.assert_close(out["s"], ref["s"], rtol=0, atol=1e-6)
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

def _loss(model, b, threshold=0.0):
    _, objective, _ = _load()
    obs = model(**b, delta=0.3, policy=False)
    pol = model(**b, delta=0.3, policy=True)
    fast = sum(m.delta_frobenius() for m in model.lor_modules())
    psi = torch.zeros((), requires_grad=True)
    loss, _ = objective.nl_mtp_loss(obs, pol, torch.randn(5), b["a"], b["env"], 0.3, psi, fast, torch.randn(5, 8),
                                    objective.LossWeights(), threshold=threshold)
    return loss


def test_gradients_reach_fast_and_base_weights():
    model, b = _tiny()
    _loss(model, b).backward()
    lors = model.lor_modules()
    assert len(lors) == 8  # Q, K, O, MLP-out on each of the two LoR layers
    for m in lors:
        for name, p in (("U", m.U), ("V", m.V), ("base", m.base.weight)):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.blocks[0].q.base.weight.grad.abs().sum() > 0
    assert model.alpha_net[0].weight.grad.abs().sum() > 0


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


# ---------------------------------------------------------------- weights and support gate

def _mdn_single(mu, sigma):
    """Raw mdn parameters of a one-component mixture with the given mean and std."""
    mu, sigma = torch.as_tensor(mu, dtype=torch.float32), torch.as_tensor(sigma, dtype=torch.float32)
    raw_sigma = torch.log(torch.expm1(sigma - 1e-3))  # inverse of softplus(.) + 1e-3
    return torch.stack([torch.zeros_like(mu), mu, raw_sigma], dim=-1)


def test_importance_weights_clipped_at_20():
    _, objective, _ = _load()
    a = torch.tensor([0.0, 0.0, 0.0])
    delta = 1.0
    # mixture centred at A - delta with small sigma: raw ratio exp(0.5 * (1/0.1)^2) is astronomically large
    mdn = _mdn_single([-1.0, -1.0, 0.0], [0.1, 0.5, 1.0])
    w = objective.importance_weights(mdn, a, delta, clip=20.0)
    assert torch.isfinite(w).all() and (w <= 20.0).all()
    assert w[0] == pytest.approx(20.0)  # raw ratio exp(50)
    assert w[1] == pytest.approx(math.exp(2.0), rel=1e-3)  # below the clip: the exact ratio
    assert w[2] == pytest.approx(math.exp(-0.5), rel=1e-4)
    assert objective.importance_weights(mdn, a, delta, clip=5.0)[1] == pytest.approx(5.0)


def test_support_gate_excludes_low_s():
    _, objective, _ = _load()
    n = 6
    mdn = _mdn_single(torch.zeros(n), torch.ones(n))
    s = torch.tensor([0.9, 0.7, 0.6, 0.59, 0.3, 0.0])
    obs = {"m": torch.zeros(n), "mdn": mdn, "s": s}
    pol = {"m": torch.zeros(n, requires_grad=True), "alpha": torch.full((n,), 0.5), "desc": torch.zeros(n, 8)}
    a, env = torch.zeros(n), torch.arange(n) % 2
    psi = torch.zeros(())

    def parts(y):
        return objective.nl_mtp_loss(obs, pol, y, a, env, 0.5, psi, torch.zeros(()), None,
                                     objective.LossWeights(), threshold=0.6)[1]

    y = torch.ones(n)
    base = parts(y)
    assert base["kept"] == 3  # s >= 0.6 only
    y_out = y.clone()
    y_out[3:] = 100.0  # change only molecules below the gate
    moved = parts(y_out)
    assert moved["dr_unit"] == pytest.approx(base["dr_unit"]) and moved["dr_mean"] == pytest.approx(base["dr_mean"])
    assert moved["observed"] > base["observed"]  # they still count in the observed fit
    y_in = y.clone()
    y_in[0] = 100.0  # a supported molecule does move the policy terms
    assert parts(y_in)["dr_unit"] > base["dr_unit"]
    none = objective.nl_mtp_loss({**obs, "s": torch.full((n,), 0.1)}, pol, y, a, env, 0.5, psi, torch.zeros(()),
                                 None, objective.LossWeights())[1]
    assert none["kept"] == 0 and none["dr_unit"] == 0.0 and none["dr_mean"] == 0.0


def test_pseudo_outcome_is_doubly_robust_form():
    _, objective, _ = _load()
    m_pol, m_obs, y, w = (torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0]), torch.tensor([1.5, 0.0]),
                          torch.tensor([2.0, 0.5]))
    torch.testing.assert_close(objective.pseudo_outcome(m_pol, m_obs, y, w), torch.tensor([3.0, 1.5]))


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
