"""Disentanglement metrics on planted structure: identity, rotation, two-factors-in-one-latent, pure noise,
and small discrete cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repscope.disentangle import disentanglement_scores, mig
from repscope.disentangle.dci_score import dci_from_importance
from repscope.disentangle.modularity_score import modularity_from_mi
from repscope.disentangle.sap_score import sap_from_matrix, sap_score_matrix

N, K, C = 1200, 4, 8
ALL = "mig,dci,sap,modularity,explicitness,infomec,beta_vae,factor_vae"
HIGH = ("mig", "dci_disentanglement", "dci_completeness", "sap", "modularity", "infom", "infoc")


def _factors(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, C, size=(N, K))


def _standard(f: np.ndarray) -> np.ndarray:
    return (f - (C - 1) / 2) / math.sqrt((C * C - 1) / 12)


def _mixing_rotation(seed: int = 1, max_entry: float = 0.7) -> np.ndarray:
    """A random rotation (QR of a Gaussian, seeded) redrawn until no entry exceeds `max_entry` in magnitude, so every
    latent mixes several factors (a near signed-permutation draw would not test anything)."""
    rng = np.random.default_rng(seed)
    while True:
        q = np.linalg.qr(rng.normal(size=(K, K)))[0]
        if np.abs(q).max() <= max_entry:
            return q


@pytest.fixture(scope="module")
def planted() -> dict[str, dict[str, float]]:
    f = _factors()
    z = _standard(f)
    rng = np.random.default_rng(2)
    opts = {"metrics": ALL, "n_train": 2000, "n_eval": 1000, "seed": 0}
    f2 = rng.integers(0, 4, size=(N, 3))  # two factors packed into one latent (16 distinct values < 20 bins)
    two = np.stack([f2[:, 0] * 4 + f2[:, 1], f2[:, 2]], axis=1).astype(float)
    return {
        "identity": disentanglement_scores(z[:, rng.permutation(K)], f, **opts),
        "rotation": disentanglement_scores(z @ _mixing_rotation(), f, **opts),
        "noise": disentanglement_scores(rng.normal(size=(N, K)), f, **opts),
        "two": disentanglement_scores(two, f2, **opts),
        "two_split": disentanglement_scores(f2.astype(float)[:, rng.permutation(3)], f2, **opts),
    }


@pytest.mark.parametrize("metric", HIGH)
def test_factors_as_latents_score_high(planted: dict, metric: str) -> None:
    assert planted["identity"][metric] >= 0.95


def test_factors_as_latents_other_scores(planted: dict) -> None:
    s = planted["identity"]
    assert s["dci_informativeness"] >= 0.95 and s["explicitness"] >= 0.95
    assert s["beta_vae"] >= 0.95 and s["factor_vae"] >= 0.95


# after a well-mixed rotation each score must fall at least this far below the identity case (and below 0.8);
# explicitness and informativeness measure information, not its arrangement, so they are not in this list
ROTATION_DROP = {"mig": 0.5, "dci_disentanglement": 0.5, "dci_completeness": 0.5, "sap": 0.5, "modularity": 0.2,
                 "infom": 0.5, "infoc": 0.5, "factor_vae": 0.3}


@pytest.mark.parametrize("metric", sorted(ROTATION_DROP))
def test_rotation_drops_each_score(planted: dict, metric: str) -> None:
    assert planted["rotation"][metric] <= planted["identity"][metric] - ROTATION_DROP[metric]
    assert planted["rotation"][metric] < 0.8


def test_rotation_keeps_linear_information(planted: dict) -> None:
    assert planted["rotation"]["explicitness"] >= 0.95  # a rotation is invertible: a linear readout still works


def test_one_latent_two_factors(planted: dict) -> None:
    two, split = planted["two"], planted["two_split"]
    assert two["dci_completeness"] >= 0.9  # each factor still lives in a single latent
    assert two["dci_disentanglement"] <= split["dci_disentanglement"] - 0.15  # but one latent serves two factors
    assert two["infoc"] >= 0.9 and two["infom"] <= split["infom"] - 0.15
    assert two["modularity"] <= split["modularity"] - 0.05


def test_noise_near_chance(planted: dict) -> None:
    s = planted["noise"]
    for m in ("mig", "dci_disentanglement", "dci_completeness", "sap", "infoe"):
        assert abs(s[m]) < 0.05, m  # chance value 0
    for m in ("infom", "infoc"):
        assert s[m] < 0.1, m  # chance 0 plus the plug-in MI bias spread
    assert abs(s["explicitness"] - 0.5) < 0.05  # chance AUC
    assert abs(s["dci_informativeness"] - 1 / C) < 0.06  # chance accuracy over C balanced classes
    assert abs(s["beta_vae"] - 1 / K) < 0.06 and abs(s["factor_vae"] - 1 / K) < 0.06  # which of K factors
    # modularity under independence is not 0 (plug-in MI bias differs between factors): it must stay far from 1
    assert s["modularity"] < 0.5


def test_mig_hand_computed() -> None:
    # v = 0,0,1,1,2,2; z0 merges v's values 0 and 1; z1 constant. I(z0; v) = H(z0) = ln 3 − (2/3) ln 2, H(v) = ln 3
    v = np.array([0, 0, 1, 1, 2, 2])
    z = np.stack([np.array([0, 0, 0, 0, 1, 1.0]), np.zeros(6)], axis=1)
    assert mig(z, v) == pytest.approx(1 - (2 / 3) * math.log(2) / math.log(3), abs=1e-12)
    # z1 = v exactly, z0 as before: gap = (ln 3 − (ln 3 − (2/3) ln 2)) / ln 3
    z2 = np.stack([z[:, 0], v.astype(float)], axis=1)
    assert mig(z2, v) == pytest.approx((2 / 3) * math.log(2) / math.log(3), abs=1e-12)


def test_dci_hand_computed() -> None:
    d, c, _, _ = dci_from_importance(np.eye(2))
    assert d == pytest.approx(1.0, abs=1e-8) and c == pytest.approx(1.0, abs=1e-8)
    # one latent carries both factors equally, the other nothing: D = 1 − H₂(½, ½) = 0 on the only used code, C = 1
    d, c, per_code, _ = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-8) and c == pytest.approx(1.0, abs=1e-8)
    # R = [[3, 1], [0, 0]]: D = 1 − H₂(¾, ¼)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert dci_from_importance(np.array([[3.0, 1.0], [0.0, 0.0]]))[0] == pytest.approx(1 - h, abs=1e-8)


def test_modularity_hand_computed() -> None:
    # latent 0 informs one factor only (score 1); latent 1 informs both equally: 1 − (1 + 1 − 1)/(1·1) = 0
    score, per = modularity_from_mi(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert per.tolist() == [1.0, 0.0] and score == 0.5


def test_sap_hand_computed() -> None:
    # v = 0..3; z0 = v (r² = 1); z1 = 0,0,1,1: cov² / (var z1 var v) = (2/3)² / ((1/3)(5/3)) = 4/5
    v = np.arange(4)[:, None]
    z = np.stack([np.arange(4.0), np.array([0, 0, 1, 1.0])], axis=1)
    s = sap_score_matrix(z, v, mode="r2")
    assert s[:, 0] == pytest.approx([1.0, 0.8], abs=1e-12)
    assert sap_from_matrix(s) == pytest.approx(0.2, abs=1e-12)
