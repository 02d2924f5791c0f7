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


def inspect_features(z: Any, samples: pd.DataFrame | None = None, targets: list[str] | None = None,
                     features: list[int] | None = None, n_features: int = 12, top_n: int = 6,
                     row_ids: np.ndarray | None = None, max_frequency: float = 0.5) -> list[dict[str, Any]]:
    """Describe latents of codes z (n, m): frequency, mean activation, top samples and best one-vs-rest AUROC label.

    Without `features`, picks the `n_features` live latents firing on at most `max_frequency` of samples with the
    highest best-label AUROC (or, with no labels, the most frequent ones). `targets`: the sample columns scored
    (default: every label-like column, `label_columns`). `row_ids` maps rows of z to rows of `samples` (default:
    identity)."""
    zz = (z if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z))).detach().cpu().to(torch.float64)
    n, m = zz.shape
    freq = (zz != 0).double().mean(0).numpy()
    ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
    cols = targets if targets is not None else (label_columns(samples) if samples is not None else [])
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


def thumbnail(image: Any, size: int = 32) -> np.ndarray:
    """An image as a small uint8 array for a card: (H, W) grayscale or (H, W, 3) RGB, at most `size` px per side.

    Accepts (H, W), (H, W, 1|3|4) and channels-first (1|3, H, W); floats in [0, 1] are scaled to 0–255."""
    a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3:
        a = a[..., 0] if a.shape[-1] == 1 else a[..., :3]
    if a.ndim not in (2, 3):
        raise ValueError(f"cannot show an image of shape {a.shape}")
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        a = a * 255.0 if a.size and a.max() <= 1.0 else a
    a = np.clip(a, 0, 255).astype(np.uint8)
    step = max(1, -(-max(a.shape[:2]) // size))
    return np.ascontiguousarray(a[::step, ::step])


def feature_cards(features: list[dict[str, Any]], images: Any = None, max_images: int = 4) -> list[dict[str, Any]]:
    """Report cards ({title, lines, images?}) from `inspect_features` output.

    `images` is indexed by each top item's `row` (the sample); the first `max_images` top samples become thumbnails
    (grayscale or RGB, ≤ 32 px per side)."""
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
            card["images"] = [thumbnail(images[t["row"]]).tolist() for t in f["top"][:max_images]]
        cards.append(card)
    return cards


def token_sample_positions(offsets: np.ndarray, token_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sample, position within the sample) of flat token rows, from a token layer's offsets (n_samples + 1)."""
    off = np.asarray(offsets, dtype=np.int64)
    rows = np.asarray(token_rows, dtype=np.int64)
    sample = np.searchsorted(off, rows, side="right") - 1
    return sample, rows - off[sample]


def _piece(tok: str) -> tuple[str, bool]:
    """(visible text, starts a new word) of one tokenizer piece (WordPiece `##`, BPE `Ġ`, SentencePiece `▁`)."""
    if tok.startswith("##") and len(tok) > 2:
        return tok[2:], False
    if tok[:1] in ("Ġ", "▁"):
        return tok[1:], True
    return tok, True


def token_context(tokens: list[str], position: int, width: int = 6) -> str:
    """`… the movie was «great» and …`: the token at `position` marked, ±`width` tokens, word pieces joined."""
    a, b = max(0, position - width), min(len(tokens), position + width + 1)
    parts: list[str] = []
    for i in range(a, b):
        text, new_word = _piece(tokens[i])
        if parts and new_word:
            parts.append(" ")
        parts.append(f"«{text}»" if i == position else text)
    return ("… " if a > 0 else "") + "".join(parts) + (" …" if b < len(tokens) else "")


def tokenize_like_store(tokenizer: Any, text: str, max_length: int | None) -> list[str]:
    """The tokens a text model saw for `text` (special tokens included, truncated like at extraction)."""
    ids = tokenizer(str(text), truncation=True, max_length=max_length or tokenizer.model_max_length)["input_ids"]
    return list(tokenizer.convert_ids_to_tokens(ids))


def label_token_items(features: list[dict[str, Any]], sample: np.ndarray, position: np.ndarray,
                      token_rows: np.ndarray, offsets: np.ndarray, samples: pd.DataFrame | None,
                      tokenizer: Any = None, max_length: int | None = None, width: int = 6) -> None:
    """Turn top items of token-level codes (rows of z) into (sample, position) items, in place.

    Each item gets `row`/`sample` (the sample index), `position`, `token_row` and, when the sample's text
    re-tokenizes to exactly the stored token count, `token` and a `text` showing the token in context; otherwise
    `text` reads `sample #i, token j`."""
    text_col = next((c for c in ("text", "sentence", "sentence1") if samples is not None and c in samples.columns),
                    None)
    cache: dict[int, list[str] | None] = {}
    for f in features:
        for item in f["top"]:
            r = item["row"]
            s, p = int(sample[r]), int(position[r])
            item.update(row=s, sample=s, position=p, token_row=int(token_rows[r]))
            item.pop("token", None)
            if s not in cache:
                toks = None
                if tokenizer is not None and text_col is not None:
                    toks = tokenize_like_store(tokenizer, samples[text_col].iloc[s], max_length)
                    if len(toks) != int(offsets[s + 1] - offsets[s]):
                        toks = None  # not the tokenization the store holds: do not guess
                cache[s] = toks
            toks = cache[s]
            if toks is not None:
                item["token"] = toks[p]
                item["text"] = token_context(toks, p, width)
            else:
                item["text"] = f"sample #{s}, token {p}"
