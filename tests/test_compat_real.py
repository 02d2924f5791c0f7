"""repscope.compat on real model pairs: digits MLP seed 0 → seed 1 (same architecture, another training run) and
CIFAR ResNet-20 → ResNet-56 (the classic small-old, bigger-new upgrade; needs ../shared/data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repscope.compat import compat_stores
from repscope.compat.report import compat_table
from tests.conftest import require_shared


def _table(result) -> pd.DataFrame:
    return compat_table(result.frame()).set_index(["query", "gallery", "transform", "direction"])


@pytest.fixture(scope="module")
def digits_pair(tmp_path_factory):
    from repscope.extract import extract
    from repscope.sources.datasets import load_sklearn
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.zoo.mlp import train_digits_mlp
    from repscope.threads import limit_threads

    root = tmp_path_factory.mktemp("digits")
    with limit_threads(1):  # hundreds of tiny training steps: one thread beats several on shared cores
        return [extract(TorchModuleAdapter(train_digits_mlp(seed), device="cpu"), load_sklearn("digits"),
                        root / f"digits_mlp_s{seed}", seed=seed, progress=False) for seed in (0, 1)]


def test_digits_seed0_to_seed1(digits_pair):
    old, new = digits_pair
    res = compat_stores(old, new, target="label", layer_old="act2", layer_new="act2", bct_epochs=300, device="cpu")
    t = _table(res)
    oo = t.loc[("old", "old", "-", "-")]
    chance = t.loc[("random", "old", "-", "-")]["recall@1"]
    assert oo["recall@1"] > 0.95 and t.loc[("new", "new", "-", "-")]["recall@1"] > 0.95
    none = t.loc[("new", "old", "none", "new→old")]
    assert abs(none["recall@1"] - chance) < 0.05  # two training runs: unrelated bases
    assert none["compatible:mAP"] == 0.0
    for key in [("procrustes(new)", "old", "procrustes", "new→old"), ("ridge(new)", "old", "ridge", "new→old"),
                ("new", "ridge(old)", "ridge", "old→new"), ("bct(new)", "old", "bct", "new→old")]:
        assert t.loc[key]["mAP"] > 0.95 * oo["mAP"], key  # a linear map recovers (almost) all of old-vs-old


@pytest.mark.shared
def test_resnet20_to_resnet56_cifar(tmp_path):
    from repscope.extract import extract
    from repscope.sources.datasets import NpzImages
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.zoo.resnet_cifar import cifar_transform, load_cifar_resnet

    # a class-balanced subset (the file's first rows hold 5 classes only): 80 images of each of the 10 classes
    with np.load(require_shared("images", "cifar10_test_a.npz"), allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:80] for c in range(10)]))
    np.savez(tmp_path / "cifar_subset.npz", images=images[keep], labels=labels[keep])
    cifar = NpzImages(tmp_path / "cifar_subset.npz")
    old, new = [extract(TorchModuleAdapter(load_cifar_resnet(depth), transform=cifar_transform, modality="image",
                                           device="cpu"), cifar, tmp_path / f"resnet{depth}", layers="avgpool",
                        pooling="spatial-mean", batch_size=200, progress=False) for depth in (20, 56)]
    t = _table(compat_stores(old, new, target="label", device="cpu"))
    oo, nn = t.loc[("old", "old", "-", "-")], t.loc[("new", "new", "-", "-")]
    assert nn["mAP"] > oo["mAP"]  # the bigger model retrieves better
    none = t.loc[("new", "old", "none", "new→old")]
    assert abs(none["recall@1"] - t.loc[("random", "old", "-", "-")]["recall@1"]) < 0.05
    assert none["compatible:mAP"] == 0.0 and none["update_gain:mAP"] < 0
    pro = t.loc[("procrustes(new)", "old", "procrustes", "new→old")]
    assert pro["compatible:mAP"] == 1.0 and pro["update_gain:mAP"] > 0.3
    assert np.isfinite(t["mAP"].dropna()).all()
