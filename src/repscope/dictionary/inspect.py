"""Feature inspection: per latent, the top-activating samples, activation frequency and the best-AUROC label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.dictionary import metrics as M


def _snippet(text: Any, width: int = 90) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def label_columns(samples: pd.DataFrame, max_classes: int = 50) -> list[str]:
    """Sample columns usable as labels: not id/text/split-like, 2..max_classes distinct values."""
    skip = {"id", "text", "sentence", "sentence1", "sentence2", "split", "pair", "side", "image", "image_index",
            "n_tokens"}
    out = []
    for c in samples.columns:
        if c in skip or samples[c].dtype.kind == "f" and samples[c].nunique() > max_classes:
            continue
        n = samples[c].nunique(dropna=True)
        if 2 <= n <= max_classes:
            out.append(str(c))
    return out


def inspect_features(z: Any, samples: pd.DataFrame | None = None, label_cols: list[str] | None = None,
                     features: list[int] | None = None, n_features: int = 12, top_n: int = 6,
                     row_ids: np.ndarray | None = None, max_frequency: float = 0.5) -> list[dict[str, Any]]:
    """Describe latents of codes z (n, m): frequency, mean activation, top samples and best one-vs-rest AUROC label.

    Without `features`, picks the `n_features` live latents firing on at most `max_frequency` of samples with the
    highest best-label AUROC (or, with no labels, the most frequent ones).
    `row_ids` maps rows of z to rows of `samples` (default: identity)."""
    zz = (z if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z))).detach().cpu().to(torch.float64)
    n, m = zz.shape
    freq = (zz != 0).double().mean(0).numpy()
    ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
    cols = label_cols if label_cols is not None else (label_columns(samples) if samples is not None else [])
    candidates = np.where((freq > 0) & (freq <= max_frequency))[0]
    if len(candidates) == 0:
        candidates = np.where(freq > 0)[0]
    best_auc = np.full(m, np.nan)
    best_lab: dict[int, tuple[str, str]] = {}
    if cols and samples is not None and len(candidates):
        sub = zz[:, candidates]
        for col in cols:
            lab = samples[col].to_numpy()[ids]
            ok = pd.notna(lab)
            if ok.sum() < 2:
                continue
            auc, classes = M.auroc_matrix(sub[torch.from_numpy(ok)], lab[ok].astype(str))
            if np.all(np.isnan(auc)):
                continue
            j = np.nanargmax(auc, axis=0)
            vals = auc[j, np.arange(len(candidates))]
            for t, f in enumerate(candidates):
                if np.isfinite(vals[t]) and not (vals[t] <= best_auc[f]):
                    best_auc[f] = vals[t]
                    best_lab[int(f)] = (col, str(classes[j[t]]))
    if features is None:
        if np.isfinite(best_auc[candidates]).any():
            key = np.nan_to_num(best_auc[candidates], nan=-1.0)
        else:
            key = freq[candidates]
        features = [int(f) for f in candidates[np.argsort(-key, kind="stable")][:n_features]]
    text_col = next((c for c in ("text", "sentence", "sentence1") if samples is not None and c in samples.columns),
                    None)
    out = []
    for f in features:
        col = zz[:, f]
        order = torch.argsort(col, descending=True, stable=True)[:top_n]
        tops = []
        for r in order.tolist():
            if col[r] <= 0:
                break
            rid = int(ids[r])
            item: dict[str, Any] = {"row": rid, "activation": float(col[r])}
            if samples is not None and text_col is not None:
                item["text"] = _snippet(samples[text_col].iloc[rid])
            if samples is not None:
                for c in cols[:3]:
                    item[c] = str(samples[c].iloc[rid])
            tops.append(item)
        lab = best_lab.get(int(f))
        out.append({"latent": int(f), "frequency": float(freq[f]),
                    "mean_activation": float(col[col > 0].mean()) if bool((col > 0).any()) else 0.0,
                    "best_label": f"{lab[0]}={lab[1]}" if lab else None,
                    "best_auroc": float(best_auc[f]) if np.isfinite(best_auc[f]) else None, "top": tops})
    return out


def feature_cards(features: list[dict[str, Any]], images: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Report cards ({title, lines, images?}) from `inspect_features` output; `images` (n, H, W) uint8 thumbnails."""
    cards = []
    for f in features:
        head = f"freq {f['frequency']:.2%}"
        if f.get("best_label"):
            head += f" · best {f['best_label']} (AUROC {f['best_auroc']:.2f})"
        lines = [head]
        for t in f["top"]:
            desc = t.get("text") or f"sample #{t['row']}"
            lines.append(f"{t['activation']:.2f}  {desc}")
        card: dict[str, Any] = {"title": f"latent {f['latent']}", "lines": lines}
        if images is not None:
            card["images"] = [np.asarray(images[t["row"]], dtype=np.uint8).tolist() for t in f["top"][:4]]
        cards.append(card)
    return cards
