"""SAE feature cards that reach back to the source: token-level layers (token in context) and image thumbnails,
plus the provenance (`dataset_spec`, `model_spec`) that makes it possible and old stores without it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from repscope.dictionary.inspect import label_token_items, thumbnail, token_context
from repscope.extract import extract
from repscope.results import ResultsDB
from repscope.sources.load import load_dataset
from repscope.sources.models import TorchModuleAdapter
from repscope.store import RepStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = [
    "the movie was great and the actors were superb", "a dog runs happily in the green park",
    "playing football in the rain is fun", "she reads unbelievably long novels every winter",
    "the stock market fell sharply on monday", "my grandmother bakes delicious apple pies",
    "the train to paris leaves at noon", "quantum computers factor large numbers quickly",
    "he forgot his umbrella at the office", "volcanoes erupt when pressure builds underground",
    "children laughed at the clumsy clown", "the orchestra tuned their violins carefully",
    "snow covered the quiet mountain village", "programmers debug code late into the night",
    "the referee blew the whistle twice", "fresh bread smells wonderful in the morning",
    "astronauts trained for months before launch", "the cat ignored the expensive new toy",
    "heavy traffic delayed the wedding guests", "tokenization splits rare words into pieces",
]


def _tokens(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text)["input_ids"])


@pytest.fixture(scope="module")
def token_store(tmp_path_factory) -> RepStore:
    from repscope.sources.datasets import TextDataset
    from repscope.sources.zoo.minilm import load_minilm

    ds = TextDataset(SENTENCES, {"label": [i % 2 for i in range(len(SENTENCES))]}, name="tiny")
    out = tmp_path_factory.mktemp("tok") / "minilm_tok"
    return extract(load_minilm("cpu"), ds, out, layers="encoder.layer.1", pooling="none", batch_size=32,
                   progress=False)


def test_token_level_sae_cards_mark_the_stored_token_in_its_sentence(token_store, tmp_path):
    from transformers import AutoTokenizer

    from repscope.dictionary.runs import train_sae_on_store
    from repscope.sources.zoo.minilm import minilm_path

    s, layer = token_store, "encoder.layer.1"
    assert s.is_tokens(layer) and s.provenance["model_spec"] == "minilm" and s.provenance["max_length"] == 128
    db = ResultsDB(tmp_path / "r.duckdb")
    res = train_sae_on_store(s, layer, k=4, expansion=1, n_steps=20, batch_size=64, device="cpu", n_cards=6)
    db.record_result(res)
    assert res.params["token_level"] and 0 < res.metrics["fvu"] < 1
    assert "probe_acc_drop" not in res.metrics  # labels are per sample: skipped for token rows
    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    off = s.offsets(layer)
    est = res.estimator
    items = [(f["latent"], t) for f in res.features for t in f["top"]]
    assert len(items) >= 6
    for latent, t in items:
        i, p = t["sample"], t["position"]
        toks = _tokens(tok, SENTENCES[i])
        assert len(toks) == off[i + 1] - off[i]
        assert t["row"] == i and t["token_row"] == off[i] + p
        assert t["token"] == toks[p]
        assert f"«{toks[p].removeprefix('##')}»" in t["text"]
        # the context comes from that sentence: its words, in order, are a substring of it
        ctx = t["text"].replace("«", "").replace("»", "").replace("…", "").replace("[CLS]", "").replace("[SEP]", "")
        assert "".join(ctx.split()) in "".join(SENTENCES[i].split())
        # the activation belongs to exactly that stored token row
        x = s.get_tokens(layer, [t["token_row"]], dtype=torch.float32)
        assert torch.equal(x[0], s.get(layer, [i], dtype=torch.float32)[p])
        assert float(est.transform(x)[0, latent]) == pytest.approx(t["activation"], rel=1e-4, abs=1e-5)
    art = db.artifacts("sae")[0]["payload"]
    assert art["cards"] and "images" not in art["cards"][0]
    assert any("«" in line for c in art["cards"] for line in c["lines"])


def test_cli_sae_train_and_inspect_on_token_layer(token_store, tmp_path):
    from repscope.cli import app

    db, out = tmp_path / "r.duckdb", tmp_path / "sae"
    r = CliRunner().invoke(app, ["sae", "train", str(token_store.root), "--layer", "encoder.layer.1", "--k", "4",
                                 "--expansion", "1", "--batch-size", "64", "--steps", "10", "-o", str(out),
                                 "--db", str(db), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["sae", "inspect", str(out), "--top", "3", "--db", str(db), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    cards = [c for a in ResultsDB(db).artifacts("sae") for c in a["payload"]["cards"]]
    assert cards and all("«" in line for c in cards for line in c["lines"][1:])


def test_token_items_fall_back_when_tokenization_differs():
    class Tok:
        model_max_length = 512

        def __call__(self, text, truncation=True, max_length=None):
            return {"input_ids": list(range(len(text.split()) + 2))}

        def convert_ids_to_tokens(self, ids):
            words = ["[CLS]", "hello", "wor", "##ld", "[SEP]"]
            return [words[i] for i in ids]

    samples = pd.DataFrame({"text": ["hello wor ld"]})
    feats = [{"top": [{"row": 0, "activation": 1.0}]}]
    label_token_items(feats, np.array([0]), np.array([3]), np.array([3]), np.array([0, 5]), samples, Tok())
    assert feats[0]["top"][0]["token"] == "##ld" and feats[0]["top"][0]["text"] == "[CLS] hello wor«ld» [SEP]"
    feats = [{"top": [{"row": 0, "activation": 1.0}]}]
    label_token_items(feats, np.array([0]), np.array([3]), np.array([3]), np.array([0, 4]), samples, Tok())
    assert "token" not in feats[0]["top"][0] and feats[0]["top"][0]["text"] == "sample #0, token 3"


def test_token_context_window_and_word_pieces():
    toks = ["[CLS]"] + [f"w{i}" for i in range(20)] + ["[SEP]"]
    assert token_context(toks, 10, width=2) == "… w7 w8 «w9» w10 w11 …"
    assert token_context(["[CLS]", "un", "##bel", "##ievable", "[SEP]"], 2) == "[CLS] un«bel»ievable [SEP]"


def test_thumbnails_gray_rgb_channels_first_and_downscaled():
    rgb = np.arange(64 * 64 * 3, dtype=np.int64).reshape(64, 64, 3) % 256
    t = thumbnail(rgb.astype(np.uint8))
    assert t.shape == (32, 32, 3) and t.dtype == np.uint8 and np.array_equal(t, rgb[::2, ::2].astype(np.uint8))
    assert thumbnail(np.zeros((3, 8, 8), np.uint8)).shape == (8, 8, 3)
    assert thumbnail(np.zeros((8, 8, 1), np.uint8)).shape == (8, 8)
    assert thumbnail(np.full((4, 4), 0.5, np.float32)).max() == 127


class _Conv(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(c, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).float() / 255.0
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)


def _image_store(tmp_path, shape: tuple[int, ...], seed: int = 0) -> tuple[RepStore, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(40, *shape), dtype=np.uint8)
    npz = tmp_path / "imgs.npz"
    np.savez(npz, images=images, labels=rng.integers(0, 3, 40))
    c = shape[2] if len(shape) == 3 else 1
    adapter = TorchModuleAdapter(_Conv(c), transform=_to_nchw, modality="image", device="cpu")
    s = extract(adapter, load_dataset(str(npz)), tmp_path / "store", layers="act", pooling="spatial-mean",
                chunk_rows=16, progress=False)
    return s, images


@pytest.mark.parametrize("shape", [(12, 12, 3), (10, 10)], ids=["rgb", "gray"])
def test_image_store_cards_carry_source_pixels_and_report_renders_them(tmp_path, shape):
    from repscope.cli import app
    from repscope.report.build import build_report

    s, images = _image_store(tmp_path, shape)
    assert s.provenance["dataset_spec"] == str((tmp_path / "imgs.npz").resolve())
    db = tmp_path / "r.duckdb"
    r = CliRunner().invoke(app, ["sae", "train", str(s.root), "--layer", "act", "--k", "2", "--expansion", "2",
                                 "--batch-size", "32", "--steps", "10", "-o", str(tmp_path / "sae"), "--db", str(db),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    (art,) = ResultsDB(db).artifacts("sae")
    feats, cards = art["payload"]["features"], art["payload"]["cards"]
    assert cards and sum(len(c.get("images", [])) for c in cards) > 0
    for f, c in zip(feats, cards, strict=True):
        assert len(c["images"]) == min(4, len(f["top"]))
        for t, im in zip(f["top"], c["images"], strict=False):
            assert np.array_equal(np.asarray(im, dtype=np.uint8), images[t["row"]])
    html = build_report(ResultsDB(db), tmp_path / "report.html").read_text()
    assert html.count('<canvas class="thumb"') == sum(len(c["images"]) for c in cards[:12])
    assert "http://" not in html.split("<script>")[0] and "<script src" not in html


def test_changed_image_source_gives_cards_without_images(tmp_path):
    from repscope.dictionary.runs import train_sae_on_store

    s, images = _image_store(tmp_path, (8, 8, 3))
    changed = images.copy()
    changed[5, 0, 0, 0] ^= 1
    np.savez(tmp_path / "imgs.npz", images=changed, labels=np.zeros(40, np.int64))
    db = ResultsDB(tmp_path / "r.duckdb")
    res = train_sae_on_store(s, "act", k=2, expansion=2, n_steps=5, batch_size=32, device="cpu")
    db.record_result(res)
    (art,) = db.artifacts("sae")
    assert res.features and art["payload"]["cards"]
    assert all("images" not in c for c in art["payload"]["cards"])
    (tmp_path / "imgs.npz").unlink()  # a vanished source: still no error
    db.record_result(train_sae_on_store(s, "act", k=2, expansion=2, n_steps=5, batch_size=32, device="cpu"))


def test_old_store_without_reload_provenance_resumes_and_trains(tmp_path):
    from repscope.dictionary.runs import train_sae_on_store

    s, images = _image_store(tmp_path, (8, 8, 3))
    man_path = s.root / "manifest.json"
    man = json.loads(man_path.read_text())
    for k in ("dataset_spec", "model_spec", "max_length"):
        man["provenance"].pop(k, None)
    man["progress"] = {"rows_done": 16, "complete": False}  # an old store, interrupted after one chunk
    man_path.write_text(json.dumps(man))
    adapter = TorchModuleAdapter(_Conv(3), transform=_to_nchw, modality="image", device="cpu")
    resumed = extract(adapter, load_dataset(str(tmp_path / "imgs.npz")), s.root, layers="act",
                      pooling="spatial-mean", chunk_rows=16, progress=False)
    assert resumed.n_rows == 40 and resumed.provenance["dataset_spec"].endswith("imgs.npz")
    assert torch.equal(resumed.get("act"), s.get("act"))
    # a complete old store without the keys opens and trains; its cards just have no thumbnails
    man = json.loads(man_path.read_text())
    man["provenance"].pop("dataset_spec")
    man.pop("checksum")  # stores that old had no manifest self-checksum either (an edited one is refused)
    man_path.write_text(json.dumps(man))
    old = RepStore.open(s.root)
    db = ResultsDB(tmp_path / "r.duckdb")
    res = train_sae_on_store(old, "act", k=2, expansion=2, n_steps=5, batch_size=32, device="cpu")
    db.record_result(res)
    assert res.features and all("images" not in c for c in db.artifacts("sae")[0]["payload"]["cards"])
