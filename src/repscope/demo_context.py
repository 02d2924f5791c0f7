"""What the demo hands to each analysis plugin's demo step (`AnalysisPlugin.demo`, e.g. `repscope.probe.demo:run`).

A demo step runs its analyses on `ctx.stores` and records each returned `Result` with `ctx.db.record_result`;
progress goes to `ctx.console` (stderr).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from repscope.results import ResultsDB
from repscope.store import RepStore


@dataclass
class DemoContext:
    """Demo state: output folder, results DB, the stores extracted so far, and flags.

    Store names in the default demo: `digits_mlp_s0`, `digits_mlp_s1`, `digits_mlp_s2` (layers fc1, act1, fc2,
    act2, out; labels `label`), `minilm_templates` (layers embeddings, encoder.layer.0 … encoder.layer.5,
    masked-mean pooled; factor columns topic, sentiment, tense, negation, number). The extended demo adds
    `minilm_sst2` (label), `minilm_trec` (label), `minilm_stsb` (pairs: pair, side, score),
    `resnet20_cifar`, `resnet56_cifar` (stage outputs, label).
    """

    workdir: Path
    db: ResultsDB
    stores: dict[str, RepStore] = field(default_factory=dict)
    extended: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True))
    device: str = "auto"
    seed: int = 0
