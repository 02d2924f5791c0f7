"""Dataset readers, template generator, spec loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repscope.errors import ConfigError, DataError
from repscope.sources.datasets import NpzImages, load_sklearn, load_sts_pairs, load_tsv_text
from repscope.sources.load import load_dataset, load_model
from repscope.sources.templates import FACTORS, generate_sentences


def test_malformed_tsv_names_the_line(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text("label\ttext\n1\tgood row\n0\tanother\textra field\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv line 3: expected 2 tab-separated fields"):
        load_tsv_text(p)


def test_tsv_missing_text_column_and_empty(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("label\tsentence\n1\thi\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'text'"):
        load_tsv_text(p)
    p.write_text("label\ttext\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_tsv_text(p)


def test_sts_pairs_layout(tmp_path):
    p = tmp_path / "sts.tsv"
    p.write_text("score\tsentence1\tsentence2\n4.5\ta cat\ta kitten\n0.5\tthe sun\tmy car\n", encoding="utf-8")
    ds = load_sts_pairs(p)
    assert ds.items(0, 4) == ["a cat", "the sun", "a kitten", "my car"]
    assert ds.samples["pair"].tolist() == [0, 1, 0, 1]
    assert ds.samples["side"].tolist() == [0, 0, 1, 1]
    assert ds.samples["score"].tolist() == [4.5, 0.5, 4.5, 0.5]
    assert load_dataset(str(p)).samples["pair"].tolist() == [0, 1, 0, 1]


def test_templates_deterministic_with_independent_factors():
    a, b, c = generate_sentences(3000, seed=1), generate_sentences(3000, seed=1), generate_sentences(3000, seed=2)
    assert a.samples.equals(b.samples)
    assert not a.samples["text"].equals(c.samples["text"])
    for f, values in FACTORS.items():
        counts = np.bincount(a.samples[f], minlength=len(values))
        assert counts.min() > 0.7 * 3000 / len(values), f  # every value used, roughly uniformly
    # the surface form carries the factors: plural subjects take plural verbs, negation adds "not"
    s = a.samples
    assert all(" not " in t for t in s["text"][s["negation"] == 1])
    assert not any(" not " in t for t in s["text"][s["negation"] == 0])
    present_plural = s[(s["tense"] == 1) & (s["number"] == 1)]["text"]
    assert all(" are " in t for t in present_plural)
    np.testing.assert_array_equal(s["polarity"], s["sentiment"] ^ s["negation"])
    # factors drawn independently: topic × sentiment contingency is close to uniform
    tab = np.histogram2d(s["topic"], s["sentiment"], bins=[6, 2])[0]
    assert tab.min() > 0.6 * 3000 / 12


def test_sklearn_sets_and_npz(tmp_path):
    d = load_sklearn("digits")
    assert d.x.shape == (1797, 64) and float(d.x.max()) == 1.0
    assert len(load_sklearn("iris")) == 150
    with pytest.raises(DataError, match="unknown scikit-learn dataset"):
        load_sklearn("mnist")
    p = tmp_path / "im.npz"
    np.savez(p, images=np.zeros((5, 4, 4, 3), np.uint8), labels=np.arange(5, dtype=np.uint8))
    ds = NpzImages(p)
    assert ds.modality == "image" and ds.items(1, 3).shape == (2, 4, 4, 3)
    assert ds.samples["image_index"].tolist() == list(range(5))
    assert len(load_dataset(f"{p}@3")) == 3


def test_bad_specs():
    with pytest.raises(ConfigError, match="unknown model 'gpt5'"):
        load_model("gpt5")
    with pytest.raises(DataError, match="not found"):
        load_dataset("nope.tsv")


@pytest.mark.parametrize("spec, match", [
    ("templates:abc", r"'templates:abc': the number of sentences after ':' must be an integer, got 'abc'"),
    ("templates:-5", r"'templates:-5': the number of sentences must be positive, got -5"),
    ("templates:0", r"must be positive, got 0"),
    ("digits@0", r"row limit @0 in 'digits@0' must be ≥ 1"),
    ("templates:20@0", r"row limit @0"),
])
def test_bad_dataset_specs_are_one_line_config_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        load_dataset(spec)


def test_good_dataset_specs_still_parse():
    assert len(load_dataset("templates:7")) == 7
    assert len(load_dataset("templates:30@5")) == 5
    assert len(load_dataset("digits@12")) == 12
    with pytest.raises(DataError, match="not found"):
        load_dataset("templatesfoo")  # no longer read as 'templates' with a silent default size


def test_bad_model_seed_spec():
    with pytest.raises(ConfigError, match=r"'digits-mlp:abc': the seed after ':' must be an integer, got 'abc'"):
        load_model("digits-mlp:abc")
    with pytest.raises(ConfigError, match=r"seed must be ≥ 0, got -1"):
        load_model("digits-mlp:-1")
    with pytest.raises(ConfigError, match="not found or not a model"):
        load_model("missing.safetensors")


def test_float_npz_in_unit_range_is_not_rescaled(tmp_path):
    """A float npz in [0, 1] was divided by 255 again; the CIFAR transform now sees the same pixels either way."""
    from repscope.sources.zoo.resnet_cifar import cifar_transform

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    unit, byte = u8.astype(np.float32) / 255.0, u8.astype(np.float32)
    p = tmp_path / "unit.npz"
    np.savez(p, images=unit, labels=np.arange(4))
    ds = load_dataset(str(p))
    ref = cifar_transform(u8)
    torch.testing.assert_close(cifar_transform(ds.items(0, 4)), ref)
    torch.testing.assert_close(cifar_transform(byte), ref)
    # the reference is the documented formula: (x/255 − mean) / std per channel
    from repscope.sources.zoo.resnet_cifar import IMAGE_MEAN, IMAGE_STD

    want = (u8[0, 2, 3, 1] / 255.0 - IMAGE_MEAN[1]) / IMAGE_STD[1]
    assert abs(float(ref[0, 1, 2, 3]) - want) < 1e-5


@pytest.mark.parametrize("values, match", [
    (np.linspace(-1, 1, 4 * 2 * 2 * 3), r"range over \[-1, 1\]"),
    (np.linspace(0, 300, 4 * 2 * 2 * 3), r"range over \[0, 300\]"),
    (np.r_[np.zeros(47), np.nan], r"range over \[0, nan\]|range over \[nan"),
])
def test_float_npz_outside_pixel_range_is_refused(tmp_path, values, match):
    p = tmp_path / "bad.npz"
    np.savez(p, images=values.reshape(4, 2, 2, 3).astype(np.float32))
    with pytest.raises(DataError, match=r"'bad.npz': float images range over") as err:
        load_dataset(str(p))
    assert err.match(match)


def test_corrupt_npz_is_a_data_error(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match=r"cannot read '.*junk.npz' as .npz images"):
        load_dataset(str(p))


def test_digits_mlp_weights_do_not_depend_on_the_thread_count():
    """`digits-mlp:SEED` is one model everywhere: training under 1 and under 2 caller threads gives the same bytes
    (before training ran on a fixed thread count, the two differed by up to 2e-3); the caller's count is restored."""
    from repscope.sources.models import state_hash
    from repscope.sources.zoo.mlp import train_digits_mlp
    from repscope.threads import limit_threads

    hashes = {}
    for n in (1, 2):
        with limit_threads(n):
            model = train_digits_mlp(3)
            assert torch.get_num_threads() == n
        hashes[n] = state_hash(model)
        assert model.repscope_hash == hashes[n]
    assert hashes[1] == hashes[2]


def test_plugin_checkpoint_formats_load_through_their_registered_source(tmp_path):
    """`sources.load` names the loader of each plugin checkpoint format by string (sources never imports a plugin):
    the learner format is the one `learn.base` writes, its ref resolves to the learner adapter, and a file in that
    format reaches it; any other safetensors file does not."""
    from repscope.learn.base import FORMAT
    from repscope.learn.source import learner_adapter
    from repscope.sources.load import CHECKPOINT_SOURCES, _checkpoint_source
    from repscope.tensorfile import save_tensors

    assert set(CHECKPOINT_SOURCES) == {FORMAT}
    learner = save_tensors(tmp_path / "l.safetensors", {"w": torch.zeros(1)}, metadata={"format": FORMAT})
    other = save_tensors(tmp_path / "o.safetensors", {"w": torch.zeros(1)}, metadata={"format": "something-else"})
    assert _checkpoint_source(learner) is learner_adapter
    assert _checkpoint_source(other) is None
