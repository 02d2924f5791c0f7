"""CKA over data that does not fit in memory: exact streaming linear CKA, and minibatch CKA (Nguyen et al. 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from repscope.device import resolve_device
from repscope.errors import DataError
from repscope.similarity.cka import _cross_sq, _unbiased_hsic, prepare_linear
from repscope.similarity.prep import to_matrix


class MinibatchCKA:
    """Minibatch CKA (Nguyen, Raghu & Kornblith 2021): Σ_b HSIC₁(K_b,L_b) / √(Σ_b HSIC₁(K_b,K_b) Σ_b HSIC₁(L_b,L_b)).

    Unbiased HSIC per minibatch, averaged over batches; a layer × layer matrix at once. Each batch needs > 3 rows.
    """

    def __init__(self, device: str = "auto"):
        self.device = device
        self.cross_: np.ndarray | None = None
        self.self_a_: np.ndarray | None = None
        self.self_b_: np.ndarray | None = None
        self.n_batches_ = 0

    def update(self, xs: Sequence | Tensor, ys: Sequence | Tensor | None = None) -> MinibatchCKA:
        """Add one minibatch: `xs` a list of layer blocks (rows aligned), `ys` another list (default: xs)."""
        xs_l = [xs] if isinstance(xs, (Tensor, np.ndarray)) else list(xs)
        ys_l = xs_l if ys is None else ([ys] if isinstance(ys, (Tensor, np.ndarray)) else list(ys))
        sa = [prepare_linear(x, self.device) for x in xs_l]
        sb = sa if ys is None else [prepare_linear(y, self.device) for y in ys_l]
        n = sa[0].n
        if n <= 3 or any(s.n != n for s in sa + sb):
            raise DataError(f"minibatch CKA needs aligned batches of more than 3 rows (got {[s.n for s in sa + sb]})")
        cross = np.array([[_unbiased_hsic(_cross_sq(a, b), a, b) for b in sb] for a in sa])
        self_a = np.array([a.self_hsic for a in sa], dtype=float)
        self_b = np.array([b.self_hsic for b in sb], dtype=float)
        if self.cross_ is None:
            self.cross_, self.self_a_, self.self_b_ = cross, self_a, self_b
        else:
            if cross.shape != self.cross_.shape:
                raise DataError("every minibatch must hold the same layers in the same order")
            self.cross_ += cross
            self.self_a_ += self_a
            self.self_b_ += self_b
        self.n_batches_ += 1
        return self

    def result(self) -> np.ndarray:
        """The (layers_a × layers_b) minibatch-CKA matrix."""
        if self.cross_ is None:
            raise DataError("no minibatch was added; call update() first")
        denom = np.sqrt(np.outer(self.self_a_, self.self_b_))
        if np.any(denom <= 0):
            raise DataError("a layer has non-positive accumulated HSIC (constant layer or tiny batches); "
                            "use larger batches or drop the layer")
        return self.cross_ / denom


class StreamingLinearCKA:
    """Exact linear and debiased CKA accumulated chunk by chunk (no n × n or n × d array held).

    Per layer pair it keeps Σ x̃ᵢᵀx̃ⱼ, Σ x̃ᵢ‖x̃ⱼ‖², Σ ‖x̃ᵢ‖²‖x̃ⱼ‖² and per layer Σ x̃, Σ ‖x̃‖², where x̃ = x − μ₀ is shifted
    by the first chunk's mean (both estimators are translation invariant, the shift only tames round-off).
    """

    def __init__(self, device: str = "auto"):
        self.device = resolve_device(device)
        self.n_ = 0
        self._shift: list[Tensor] | None = None
        self._sum: list[Tensor] = []
        self._rsum: list[float] = []
        self._pairs: dict[tuple[int, int], list] = {}

    def update(self, blocks: Sequence) -> StreamingLinearCKA:
        """Add aligned row blocks, one per layer (layers of both stores concatenated in one list)."""
        xs = [to_matrix(b, self.device, name=f"layer {i}") for i, b in enumerate(blocks)]
        if self._shift is None:
            self._shift = [x.mean(0, keepdim=True) for x in xs]
            self._sum = [torch.zeros(x.shape[1], dtype=torch.float64, device=self.device) for x in xs]
            self._rsum = [0.0] * len(xs)
        if len(xs) != len(self._shift):
            raise DataError("every chunk must hold the same layers in the same order")
        xs = [x - s for x, s in zip(xs, self._shift, strict=True)]
        rs = [(x * x).sum(1) for x in xs]
        for i, x in enumerate(xs):
            self._sum[i] += x.sum(0)
            self._rsum[i] += float(rs[i].sum())
        for i in range(len(xs)):
            for j in range(i, len(xs)):
                acc = self._pairs.get((i, j))
                m, v, w, q = xs[i].T @ xs[j], xs[i].T @ rs[j], xs[j].T @ rs[i], float(rs[i] @ rs[j])
                if acc is None:
                    self._pairs[(i, j)] = [m, v, w, q]
                else:
                    acc[0] += m
                    acc[1] += v
                    acc[2] += w
                    acc[3] += q
        self.n_ += xs[0].shape[0]
        return self

    def _pair(self, i: int, j: int) -> tuple[float, float]:
        """(‖XcᵀYc‖²_F, unbiased HSIC) for layers i, j."""
        if (i, j) in self._pairs:
            m, v, w, q = self._pairs[(i, j)]
        else:
            m, w, v, q = self._pairs[(j, i)]
            m = m.T
        n = self.n_
        si, sj = self._sum[i], self._sum[j]
        centred = float(torch.linalg.vector_norm(m - torch.outer(si, sj) / n) ** 2)
        if n <= 3:
            return centred, float("nan")
        t = float(torch.linalg.vector_norm(m) ** 2) - q
        s_i = float(si @ si) - self._rsum[i]
        s_j = float(sj @ sj) - self._rsum[j]
        c = float(si @ m @ sj) - float(si @ v) - float(sj @ w) + q
        return centred, (t + s_i * s_j / ((n - 1) * (n - 2)) - 2.0 * c / (n - 2)) / (n * (n - 3))

    def result(self, rows: Sequence[int], cols: Sequence[int], debiased: bool = False) -> np.ndarray:
        """CKA matrix between the layers at positions `rows` and those at `cols` of the update() lists."""
        if self.n_ == 0:
            raise DataError("no chunk was added; call update() first")
        if debiased and self.n_ <= 3:
            raise DataError(f"debiased CKA needs more than 3 samples, got {self.n_}")
        k = 1 if debiased else 0
        selfs = {i: self._pair(i, i)[k] for i in set(rows) | set(cols)}
        bad = [i for i, v in selfs.items() if not v > 0]
        if bad:
            raise DataError(f"layer(s) at position {bad} are constant across samples; CKA is undefined — drop them")
        out = np.empty((len(rows), len(cols)))
        for a, i in enumerate(rows):
            for b, j in enumerate(cols):
                out[a, b] = self._pair(i, j)[k] / (selfs[i] * selfs[j]) ** 0.5
        return out


def streaming_cka_bytes(widths: Sequence[int]) -> int:
    """Bytes `StreamingLinearCKA` holds for layers of these widths: per pair (i ≤ j) a float64 dᵢ × dⱼ block (plus
    vectors), counted twice for the temporary product of each update."""
    w = list(widths)
    return int(sum(2 * 8 * (w[i] * w[j] + w[i] + w[j]) for i in range(len(w)) for j in range(i, len(w))))


def streaming_cka_matrix(store_a, store_b=None, layers_a=None, layers_b=None, chunk_rows: int | None = None,
                         debiased: bool = False, device: str = "auto", rows: np.ndarray | None = None) -> pd.DataFrame:
    """Exact linear (or debiased) CKA layer × layer matrix read chunk by chunk from one or two RepStores, over all
    rows or the row indices `rows` (in the stores' order)."""
    from repscope.store.pairing import check_paired

    la = store_a.resolve_layers(layers_a)
    sb = store_b if store_b is not None else store_a
    lb = sb.resolve_layers(layers_b) if (store_b is not None or layers_b is not None) else la
    check_paired(store_a, store_b)  # row i of each store is the same input (or an explicit opt-in)
    step = int(chunk_rows or store_a.manifest.get("chunk_rows", 1024))
    if sb is store_a:  # one store: read each layer once
        names = [(store_a, layer) for layer in dict.fromkeys(la + lb)]
        pos = {layer: i for i, (_, layer) in enumerate(names)}
        row_pos, col_pos = [pos[layer] for layer in la], [pos[layer] for layer in lb]
    else:
        names = [(store_a, layer) for layer in la] + [(sb, layer) for layer in lb]
        row_pos, col_pos = list(range(len(la))), list(range(len(la), len(la) + len(lb)))
    acc = StreamingLinearCKA(device)
    if rows is None:
        pieces = [slice(s, min(s + step, store_a.n_rows)) for s in range(0, store_a.n_rows, step)]
    else:
        idx = np.asarray(rows, dtype=np.int64)
        pieces = [idx[s : s + step] for s in range(0, len(idx), step)]
    for sel in pieces:
        acc.update([st.get(layer, sel) for st, layer in names])
    mat = acc.result(row_pos, col_pos, debiased=debiased)
    return pd.DataFrame(mat, index=la, columns=lb)
