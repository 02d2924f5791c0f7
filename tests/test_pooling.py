"""Every pooling mode against a hand computation with explicit loops."""

import pytest
import torch

from repscope.errors import ConfigError
from repscope.extract.pooling import pool, resolve_pooling


@pytest.fixture
def tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    return x, mask


def test_masked_mean_matches_loop(tokens):
    x, mask = tokens
    got = pool(x, resolve_pooling("masked-mean", 3, True), mask)
    for i in range(3):
        n = int(mask[i].sum())
        want = sum(x[i, t] for t in range(n)) / n
        torch.testing.assert_close(got[i], want)


def test_mean_ignores_mask(tokens):
    x, mask = tokens
    torch.testing.assert_close(pool(x, "mean", mask)[0], x[0].sum(0) / 5)


def test_cls_first_and_last_token(tokens):
    x, mask = tokens
    torch.testing.assert_close(pool(x, resolve_pooling("first", 3, True), mask), x[:, 0])
    last = pool(x, "last-token", mask)
    for i, n in enumerate([3, 5, 1]):
        torch.testing.assert_close(last[i], x[i, n - 1])


def test_last_token_left_padding():
    x = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[0, 0, 1, 1]])
    torch.testing.assert_close(pool(x, "last-token", mask)[0], x[0, 3])


def test_max_over_valid_tokens_only(tokens):
    x, mask = tokens
    x = x.clone()
    x[0, 4] = 100.0  # padding position must not win
    got = pool(x, "max", mask)
    want = torch.stack([torch.stack([x[0, t] for t in range(3)]).max(0).values])
    torch.testing.assert_close(got[0], want[0])


def test_none_keeps_valid_tokens(tokens):
    x, mask = tokens
    got = pool(x, "none", mask)
    assert [g.shape[0] for g in got] == [3, 5, 1]
    torch.testing.assert_close(got[2], x[2, :1])


def test_conv_map_poolings():
    x = torch.randn(2, 3, 4, 5)
    sm = pool(x, resolve_pooling("spatial-mean", 4, False))
    assert sm.shape == (2, 3)
    torch.testing.assert_close(sm[1, 2], x[1, 2].sum() / 20)
    torch.testing.assert_close(pool(x, "max")[0, 1], x[0, 1].max())
    torch.testing.assert_close(pool(x, "flatten")[1], torch.cat([x[1, c].reshape(-1) for c in range(3)]))
    toks = pool(x, "none")
    assert toks[0].shape == (20, 3)
    torch.testing.assert_close(toks[0][7], x[0, :, 7 // 5, 7 % 5])


def test_auto_resolution_and_bad_modes():
    assert resolve_pooling("auto", 2, False) == "identity"
    assert resolve_pooling("auto", 3, True) == "masked-mean"
    assert resolve_pooling("auto", 3, False) == "mean"
    assert resolve_pooling("auto", 4, False) == "spatial-mean"
    with pytest.raises(ConfigError, match="conv maps"):
        resolve_pooling("cls", 4, False)
    with pytest.raises(ConfigError, match="unknown pooling"):
        resolve_pooling("median", 3, True)


def test_position_pickers_need_a_sequence_axis():
    """cls/first/last-token on a (B, D) output used to store identity pooling silently; now refused with the layer."""
    for mode in ("cls", "first", "last-token"):
        with pytest.raises(ConfigError, match=r"pooling '.*' needs a sequence axis .* layer 'fc1'"):
            resolve_pooling(mode, 2, False, layer="fc1")
    # reductions over a vector are the vector itself
    for mode in ("auto", "mean", "masked-mean", "max", "flatten"):
        assert resolve_pooling(mode, 2, False, layer="fc1") == "identity"
    x = torch.randn(3, 5)
    torch.testing.assert_close(pool(x, resolve_pooling("mean", 2, False)), x)
    # with a sequence axis, cls still picks position 0
    seq = torch.randn(2, 4, 3)
    torch.testing.assert_close(pool(seq, resolve_pooling("cls", 3, False, layer="h")), seq[:, 0])
