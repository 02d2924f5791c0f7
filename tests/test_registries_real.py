"""Every registry is real (issue 21): an entry registered before any lookup is dispatched through its registered object
from the Python API, the CLI and study files, and the built-ins stay; one population rule for all registries; plugins
advertised under the `repscope.plugins` entry-point group are loaded once by `repscope.analyses.plugins()`.

The toy registrations that must come "before any lookup" run in a fresh interpreter each (a subprocess), so the order
is honest; the parent checks their numbers against independent computations on the same data."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import repscope
from repscope.errors import ConfigError
from repscope.registry import Registry
from repscope.store import RepStore, write_store

SRC = Path(repscope.__file__).parent
ROOT = Path(__file__).parents[1]


def run_script(code: str, *args: object) -> dict:
    """Run `code` in a fresh interpreter (argv = args) and return the JSON object it prints last."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A small pooled store: layer `a` = 2 planted factors (plus small noise) mixed into 6 dims, `b` = noise; samples
    carry the binned factors f1, f2 and a 3-class label; saved at <tmp>/w/s (a study workdir)."""
    rng = np.random.default_rng(0)
    n = 150
    z = rng.normal(size=(n, 2))
    a = z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(n, 6))
    b = rng.normal(size=(n, 5))
    f1, f2 = (np.digitize(z[:, j], [-0.6, 0.0, 0.6]) for j in range(2))
    samples = pd.DataFrame({"f1": f1, "f2": f2, "label": (f1 + 2 * f2) % 3})
    root = tmp_path_factory.mktemp("reg_real")
    return write_store(root / "w" / "s", {"a": a.astype(np.float32), "b": b.astype(np.float32)}, samples)


def study_file(store: RepStore, name: str, step: str, params: dict) -> Path:
    """A study over the existing store `s` (reused as written, nothing extracted)."""
    cfg = store.root.parent.parent / f"{name}.yaml"
    cfg.write_text(json.dumps({"name": name, "workdir": "w", "db": f"{name}.duckdb",
                               "stores": [{"name": "s", "model": "unused", "data": "unused"}],
                               "analyses": [{"run": step, "stores": ["s"], "params": params}]}))
    return cfg


# ---- one population rule ----------------------------------------------------------------------------------------
def registry_refs() -> list[str]:
    """Every module-level `NAME: Registry[...] = Registry(...)` in the package, as "module:NAME" (found in the source,
    so a new registry is covered without editing this test)."""
    refs = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for m in re.finditer(r"^([A-Z_][A-Z0-9_]*)\s*:\s*Registry\[.*?\]\s*=\s*Registry\(", path.read_text(), re.M):
            refs.append(f"{module}:{m.group(1)}")
    return refs


def test_registry_scan_finds_the_known_registries():
    refs = set(registry_refs())
    assert {"repscope.learn.registry:LEARNERS", "repscope.disentangle.suite:DISENTANGLEMENT_METRICS",
            "repscope.compress.quantize_embeddings:SCHEMES", "repscope.disentangle.dci_score:DCI_ENGINES",
            "repscope.similarity.registry:MEASURES", "repscope.probe.registry:PROBES"} <= refs


def test_every_registry_keeps_its_builtins_when_a_user_registers_first():
    code = """
        import importlib, json, sys
        refs, register = sys.argv[2:], sys.argv[1] == "register"
        regs = {}
        for ref in refs:  # import everything first: no module may look a lazy registry up at import time
            module, attr = ref.split(":")
            regs[ref] = getattr(importlib.import_module(module), attr)
        out = {}
        for ref, reg in regs.items():
            lazy_untouched = reg._builtins is None or not reg._loaded  # private: the honest "before any lookup"
            if register:
                reg.register("zz_toy", object(), paper="test")
            out[ref] = {"names": reg.names(), "untouched": lazy_untouched}
        print(json.dumps(out))
    """
    refs = registry_refs()
    first = run_script(code, "register", *refs)
    plain = run_script(code, "plain", *refs)
    for ref in refs:
        assert first[ref]["untouched"], f"{ref}: its built-ins were loaded before the first user access"
        assert plain[ref]["names"], f"{ref} has no built-ins"
        assert first[ref]["names"] == [*plain[ref]["names"], "zz_toy"], ref


def test_builtins_load_once_on_any_first_access_and_a_failed_load_is_retried():
    calls = []

    def load_ok():
        calls.append(1)
        reg.register("alpha", 1, aliases=("a",))
        reg.register("beta", 2)

    reg: Registry[int] = Registry("thing", builtins=load_ok)
    reg.register("gamma", 3)  # the first access is a registration: built-ins come first
    assert reg.names() == ["alpha", "beta", "gamma"] and "a" in reg and len(reg) == 3 and calls == [1]
    with pytest.raises(ConfigError, match="thing 'alpha' is already registered"):
        reg.register("alpha", 9)  # a user entry never hides a built-in
    assert reg.get("a") == 1 and calls == [1]

    state = {"fail": True}

    def load_flaky():
        reg2.register("one", 1)
        if state["fail"]:
            raise ImportError("optional dependency missing")
        reg2.register("two", 2)

    reg2: Registry[int] = Registry("flaky", builtins=load_flaky)
    with pytest.raises(ImportError):
        reg2.names()
    state["fail"] = False
    assert reg2.names() == ["one", "two"]  # nothing half-loaded was kept; the next access loads again


def test_builtins_loader_may_be_a_module_function_string(monkeypatch):
    import types

    module = types.ModuleType("zz_registry_loader")
    module.fill = lambda: reg.register("builtin", 1)
    reg: Registry[int] = Registry("by ref", builtins="zz_registry_loader:fill")
    monkeypatch.setitem(sys.modules, "zz_registry_loader", module)  # importable only now: resolved on first access
    assert "builtin" in reg and reg.names() == ["builtin"]


# ---- disentanglement metrics -------------------------------------------------------------------------------------
DISENTANGLE_SCRIPT = """
    import json, sys
    import numpy as np
    from repscope.disentangle.suite import DISENTANGLEMENT_METRICS

    @DISENTANGLEMENT_METRICS.register("toy", scores=("toy_mean_abs",), paper="test toy", default=False)
    def toy(run):
        return {"toy_mean_abs": float(np.abs(run.x).mean())}

    from typer.testing import CliRunner
    from repscope.cli import build_app
    from repscope.disentangle import disentangle_store, disentanglement_scores
    from repscope.results import ResultsDB
    from repscope.store import RepStore
    from repscope.study import run_study

    store, cfg, db = RepStore.open(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows = lambda frame: sorted([r.layer, r.metric, float(r.value)] for r in frame.itertuples())
    x = store.get("a").numpy()
    out = {"names": DISENTANGLEMENT_METRICS.names(),
           "api": {k: float(v) for k, v in disentanglement_scores(x, store.samples[["f1", "f2"]],
                                                                    metrics=["toy", "mig"]).items()},
           "api_str": list(disentanglement_scores(x, store.samples[["f1", "f2"]], metrics="toy")),
           "store": sorted([r.layer, r.metric, r.value] for r in disentangle_store(store, "f1,f2",
                                                                                   metrics="toy,mig").rows)}
    r = CliRunner().invoke(build_app(), ["disentangle", str(store.root), "--factors", "f1,f2", "--metrics", "toy,mig",
                                         "--db", db])
    out["cli_exit"], out["cli_output"] = r.exit_code, r.output[-1500:]
    out["cli"] = rows(ResultsDB(db).frame("disentangle")) if r.exit_code == 0 else []
    run_study(cfg)
    out["study"] = rows(ResultsDB(store.root.parent / "dis.duckdb").frame("disentangle"))
    print(json.dumps(out))
"""


def test_toy_disentanglement_metric_from_api_store_cli_and_study(planted, tmp_path):
    from repscope.disentangle import disentanglement_scores

    cfg = study_file(planted, "dis", "disentangle", {"factors": ["f1", "f2"], "metrics": ["toy", "mig"]})
    out = run_script(DISENTANGLE_SCRIPT, planted.root, cfg, tmp_path / "cli.duckdb")
    from repscope.disentangle.suite import DISENTANGLEMENT_METRICS

    builtins = ["mig", "dci", "sap", "modularity", "explicitness", "beta_vae", "factor_vae", "infomec"]
    assert out["names"][:8] == builtins and out["names"] == [*DISENTANGLEMENT_METRICS.names(), "toy"]
    x = planted.get("a").numpy().astype(np.float64)
    f = planted.samples[["f1", "f2"]]
    assert out["api"]["toy_mean_abs"] == pytest.approx(np.abs(x).mean(), rel=1e-12)  # independent: numpy on the layer
    assert out["api"]["mig"] == pytest.approx(disentanglement_scores(x, f, metrics="mig")["mig"], rel=1e-12)
    assert out["api_str"] == ["toy_mean_abs"]  # a string is one metric name, not its characters
    expect = {(layer, "toy_mean_abs"): np.abs(planted.get(layer).numpy().astype(np.float64)).mean()
              for layer in ("a", "b")}
    expect |= {(layer, "mig"): disentanglement_scores(planted.get(layer).numpy(), f, metrics="mig")["mig"]
               for layer in ("a", "b")}
    assert out["cli_exit"] == 0, out["cli_output"]
    for key in ("store", "cli", "study"):
        got = {(layer, metric): value for layer, metric, value in out[key]}
        assert got.keys() == expect.keys(), key
        for k, v in expect.items():
            assert got[k] == pytest.approx(v, rel=1e-9), (key, k)
    # the planted layer is the disentangled one: a built-in still computes what it did
    got = {(layer, metric): value for layer, metric, value in out["study"]}
    assert got[("a", "mig")] > got[("b", "mig")]


def test_unknown_metric_scheme_engine_and_learner_are_one_line_errors():
    from repscope.compress.quantize_embeddings import quantize
    from repscope.disentangle import disentanglement_scores
    from repscope.learn.registry import learner_class

    x, f = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30)[:, None] % 3
    cases = [(lambda: disentanglement_scores(x, f, metrics="toyy"), "unknown disentanglement metric 'toyy'; choose "
              "one of mig, dci"),
             (lambda: disentanglement_scores(x, f, metrics="dci", importance="forest"), "unknown DCI importance "
              "'forest'; choose one of gbt, gbt-sklearn, gbt-hist, lasso"),
             (lambda: quantize(x, "int4"), "unknown embedding quantization scheme 'int4'; choose one of float32, "
              "float16, int8, binary"),
             (lambda: learner_class("gan"), "unknown learner 'gan'; choose one of ae, vae, qlae, simclr, matryoshka")]
    for call, msg in cases:
        with pytest.raises(ConfigError, match=re.escape(msg)) as err:
            call()
        assert "\n" not in str(err.value)


# ---- DCI engines ---------------------------------------------------------------------------------------------------
def _class_means_engine(x_train, y_train, x_test, *, seed=0, **_):
    """Toy DCI engine: importance = spread of the class means per latent; prediction = nearest class mean."""
    classes = np.unique(y_train)
    means = np.stack([x_train[y_train == c].mean(0) for c in classes])
    imp = means.max(0) - means.min(0)

    def predict(x):
        return classes[((x[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)]

    return imp, predict(x_train), predict(x_test)


def test_toy_dci_engine_is_dispatched_through_the_registry(planted):
    from repscope.disentangle import dci, disentanglement_scores
    from repscope.disentangle.dci_score import DCI_ENGINES, dci_from_importance
    from repscope.disentangle.inputs import encode_factors, split_indices
    from repscope.disentangle.study import DisentangleParams

    x = planted.get("a").numpy().astype(np.float64)
    f = planted.samples[["f1", "f2"]]
    DCI_ENGINES.register("class-means", _class_means_engine, exact=False, paper="test toy")
    try:
        out = dci(x, f, importance="class-means")
        v, _ = encode_factors(f, n_rows=len(x))
        tr, te = split_indices(len(x), test_fraction=1 / 3, seed=0)
        want = np.stack([_class_means_engine(x[tr], v[tr, j], x[te])[0] for j in range(v.shape[1])], 1)
        np.testing.assert_allclose(out["importance"], want, rtol=0, atol=0)
        assert out["disentanglement"] == pytest.approx(dci_from_importance(want)[0])
        s = disentanglement_scores(x, f, metrics="dci", importance="class-means")
        assert s["dci_disentanglement"] == pytest.approx(out["disentanglement"])
        assert DisentangleParams(factors=["f1"], importance="class-means").importance == "class-means"
        assert DCI_ENGINES.names()[:4] == ["gbt", "gbt-sklearn", "gbt-hist", "lasso"]
    finally:
        DCI_ENGINES.unregister("class-means")
    with pytest.raises(ValueError, match="unknown DCI importance 'class-means'"):  # pydantic wraps the ConfigError
        DisentangleParams(factors=["f1"], importance="class-means")


# ---- embedding schemes -------------------------------------------------------------------------------------------
SCHEME_SCRIPT = """
    import json, sys
    import torch
    from repscope.compress.quantize_embeddings import SCHEMES, EmbeddingScheme

    def keep_half(t, state):  # the first half of the dimensions, float32
        return t[:, : t.shape[1] // 2].clone()

    def zero_fill(codes, d, state):
        out = torch.zeros(codes.shape[0], d)
        out[:, : codes.shape[1]] = codes
        return out

    SCHEMES.register("toy", EmbeddingScheme(bits=16, encode=keep_half, decode=zero_fill), paper="test toy",
                     rescore=False)

    from typer.testing import CliRunner
    from repscope.cli import build_app
    from repscope.compress.evaluate import eval_plan
    from repscope.compress.quantize_embeddings import bytes_per_vector, quantize
    from repscope.compress.quantized_eval import quantization_scores
    from repscope.results import ResultsDB
    from repscope.store import RepStore
    from repscope.study import run_study

    store, cfg, db = RepStore.open(sys.argv[1]), sys.argv[2], sys.argv[3]
    x = store.get("a").numpy()
    plan = eval_plan(store.samples, store.n_rows, target="label", seed=0)
    df = quantization_scores(x, plan, schemes=["toy", "int8"], rescore_r=2, k=5, probe=False, device="cpu")
    q = quantize(x, "toy")
    out = {"names": SCHEMES.names(), "eval": [int(i) for i in plan.eval],
           "api": [[r.scheme, int(r.rescore), int(r.bytes_per_vector), r.metric, float(r.value)]
                   for r in df.itertuples()],
           "bytes": bytes_per_vector("toy", 6), "decoded": q.decode().tolist()}
    keep = lambda f: sorted([r.layer, r.params["scheme"], int(r.params["rescore"]), r.metric, float(r.value)]
                            for r in f.itertuples())
    r = CliRunner().invoke(build_app(), ["quantize-embeddings", str(store.root), "--schemes", "toy,int8", "--k", "5",
                                         "--rescore", "2", "--no-probe", "--device", "cpu", "--db", db])
    out["cli_exit"], out["cli_output"] = r.exit_code, r.output[-1500:]
    out["cli"] = keep(ResultsDB(db).frame("quantize_embeddings")) if r.exit_code == 0 else []
    run_study(cfg)
    out["study"] = keep(ResultsDB(store.root.parent / "qe.duckdb").frame("quantize_embeddings"))
    print(json.dumps(out))
"""


def _top_k(v: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out cosine top-k of each row (numpy, float64)."""
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def test_toy_embedding_scheme_from_api_cli_and_study(planted, tmp_path):
    from repscope.compress.evaluate import eval_plan
    from repscope.compress.quantized_eval import quantization_scores

    cfg = study_file(planted, "qe", "quantize_embeddings", {"schemes": ["toy", "int8"], "k": 5, "rescore": 2,
                                                            "probe": False, "device": "cpu"})
    out = run_script(SCHEME_SCRIPT, planted.root, cfg, tmp_path / "cli.duckdb")
    from repscope.compress.quantize_embeddings import SCHEMES

    assert out["names"][:4] == ["float32", "float16", "int8", "binary"] and out["names"] == [*SCHEMES.names(), "toy"]
    x = planted.get("a").numpy()
    assert out["bytes"] == 12  # 16 bits per dimension: d/2 float32 values
    want_dec = np.zeros_like(x)
    want_dec[:, :3] = x[:, :3]
    np.testing.assert_array_equal(np.asarray(out["decoded"], dtype=np.float32), want_dec)
    # recall@5 of the toy's first stage against exact float32 search, computed independently (numpy, float64)
    ev = x[np.asarray(out["eval"])].astype(np.float64)
    ev /= np.linalg.norm(ev, axis=1, keepdims=True)
    half = ev.copy()
    half[:, 3:] = 0
    exact, approx = _top_k(ev, 5), _top_k(half, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(approx, exact, strict=True)])
    api = {(s, r, m): (b, v) for s, r, b, m, v in out["api"]}
    assert api[("toy", 0, "recall@5_vs_float32")] == (12, pytest.approx(recall, abs=1e-12))
    assert ("toy", 2, "recall@5_vs_float32") not in api  # declared rescore=False: no rescoring variant
    # the built-in int8 rows are what they are without the toy registered
    plan = eval_plan(planted.samples, planted.n_rows, target="label", seed=0)
    ref = quantization_scores(x, plan, schemes="int8", rescore_r=2, k=5, probe=False, device="cpu")
    for r in ref.itertuples():
        assert api[(r.scheme, int(r.rescore), r.metric)] == (int(r.bytes_per_vector), pytest.approx(r.value,
                                                                                                   rel=1e-12))
    assert out["cli_exit"] == 0, out["cli_output"]
    assert out["cli"] == out["study"]
    toy_rows = {(layer, m): v for layer, s, rs, m, v in out["cli"] if s == "toy"}
    assert toy_rows[("a", "recall@5_vs_float32")] == pytest.approx(recall, abs=1e-12)
    assert {s for _, s, *_ in out["cli"]} == {"float32", "int8", "toy"}


def test_study_params_refuse_an_unknown_scheme(planted):
    from repscope.study import load_study

    cfg = study_file(planted, "qe_bad", "quantize_embeddings", {"schemes": ["int8", "int4"]})
    with pytest.raises(ConfigError, match="unknown embedding quantization scheme 'int4'; choose one of float32"):
        load_study(cfg)


# ---- learners ------------------------------------------------------------------------------------------------------
LEARNER_SCRIPT = """
    import json, sys
    from torch import nn
    from repscope.learn.base import Learner
    from repscope.learn.registry import LEARNERS

    class ToyLinear(Learner):
        '''A linear autoencoder (test toy).'''
        KIND = "toy"

        def build(self):
            d = self.input_shape_[0]
            self.encoder, self.decoder = nn.Linear(d, self.latents), nn.Linear(self.latents, d)

        def encode(self, x):
            return self.encoder(x)

        def loss(self, x, g):
            return ((self.decoder(self.encoder(x)) - x) ** 2).mean()

    untouched = not LEARNERS._loaded  # private: nothing looked the learners up before this registration
    LEARNERS.register("toy", ToyLinear, paper="test toy: linear autoencoder")

    from typer.testing import CliRunner
    from repscope.cli import build_app
    from repscope.learn import load_learner
    from repscope.results import ResultsDB
    from repscope.store import RepStore
    from repscope.study import run_study

    store, cfg, ck = RepStore.open(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = {"untouched": untouched, "names": LEARNERS.names()}
    r = CliRunner().invoke(build_app(), ["learn", "train", "toy", str(store.root), "-l", "a", "-o", ck, "--latents",
                                         "2", "--epochs", "40", "--batch-size", "32", "--lr", "0.01", "--device",
                                         "cpu"])
    out["cli_exit"], out["cli_output"] = r.exit_code, r.output[-1500:]
    model = load_learner(ck, device="cpu")
    out["loaded"] = [type(model).__name__, model.epoch_, model.history_[0], model.history_[-1]]
    run_study(cfg)
    f = ResultsDB(store.root.parent / "le.duckdb").frame()
    out["study"] = sorted([r.analysis, r.store, r.model, r.metric, float(r.value)] for r in f.itertuples())
    print(json.dumps(out))
"""


def test_toy_learner_from_cli_and_study_with_builtins_kept(planted, tmp_path):
    cfg = study_file(planted, "le", "learn", {"learner": "toy", "layer": "a", "latents": 2, "epochs": 40,
                                              "batch_size": 32, "lr": 0.01, "factors": ["f1", "f2"],
                                              "metrics": ["mig"], "device": "cpu"})
    out = run_script(LEARNER_SCRIPT, planted.root, cfg, tmp_path / "toy.safetensors")
    assert out["untouched"]
    from repscope.learn.registry import LEARNERS

    assert out["names"][:5] == ["ae", "vae", "qlae", "simclr", "matryoshka"]
    assert out["names"] == [*LEARNERS.names(), "toy"]  # every built-in (a later one too), then the toy
    assert out["cli_exit"] == 0, out["cli_output"]
    name, epoch, first, last = out["loaded"]
    assert (name, epoch) == ("ToyLinear", 40)  # the checkpoint loads back through the registry
    var = planted.get("a").numpy().var(0).mean()
    assert last < 0.1 * first and last < 0.05 * var  # 2 latents recover the planted 2-dim structure
    rows = out["study"]
    learn = {m: v for a, _, model, m, v in rows if a == "learn" and model == "toy"}
    assert learn["final_loss"] < 0.1 * learn["first_loss"]
    assert any(a == "disentangle" and m == "mig" for a, _, _, m, _ in rows)  # the learned latents were analysed


# ---- entry points --------------------------------------------------------------------------------------------------
class FakeEntryPoint:
    """What `importlib.metadata.entry_points(group=...)` yields: name, value, dist and load()."""

    def __init__(self, name: str, value: str, obj: object, dist: str):
        self.name, self.value, self._obj, self.dist = name, value, obj, SimpleNamespace(name=dist)

    def load(self) -> object:
        if isinstance(self._obj, BaseException):
            raise self._obj
        return self._obj


def _ep_plugin():
    import typer

    from repscope.analyses import AnalysisPlugin

    def register(app: typer.Typer) -> None:
        @app.command("ep-hello")
        def hello() -> None:
            """Say hello (entry-point test plugin).

            Example: repscope ep-hello
            """
            typer.echo("hello from ep-pkg")

    return AnalysisPlugin("ep_toy", 95, cli=register)


@pytest.fixture
def entry_points(monkeypatch):
    """Fake the `repscope.plugins` entry points with the list `set_to` receives; state of `analyses` restored."""
    import repscope.cli  # noqa: F401 - importing the CLI lists the plugins: done before the fake is in place
    from repscope import analyses

    calls: list[str | None] = []
    eps: list[FakeEntryPoint] = []

    def fake(group: str | None = None, **_):
        calls.append(group)
        return list(eps) if group == analyses.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.setitem(analyses._ENTRY_POINTS, "loaded", False)
    monkeypatch.setitem(analyses._ENTRY_POINTS, "error", None)
    yield SimpleNamespace(calls=calls, set_to=lambda *e: eps.extend(e))
    for name in ("ep_toy",):
        if any(p.name == name for p in analyses.PLUGINS):
            analyses.unregister_plugin(name)


def test_entry_point_plugin_is_loaded_once_and_reaches_the_cli(entry_points):
    from typer.testing import CliRunner

    from repscope.analyses import ENTRY_POINT_GROUP, plugins
    from repscope.cli import build_app

    entry_points.set_to(FakeEntryPoint("ep_toy", "ep_pkg.plugin:make", _ep_plugin, "ep-pkg"))
    names = [p.name for p in plugins()]
    assert names[-1] == "ep_toy" and "probe" in names and "learn" in names  # after the built-ins (order 95)
    plugins()
    assert entry_points.calls == [ENTRY_POINT_GROUP]  # read once
    r = CliRunner().invoke(build_app(), ["ep-hello"])
    assert r.exit_code == 0 and "hello from ep-pkg" in r.output


@pytest.mark.parametrize("obj,why", [
    (ModuleNotFoundError("No module named 'ep_missing'"), "No module named 'ep_missing'"),
    ("not a plugin", "it gave str, not an AnalysisPlugin"),
    (lambda: __import__("repscope.analyses").analyses.AnalysisPlugin("probe", 1), "analysis plugin 'probe' is "
                                                                                   "already registered"),
])
def test_entry_point_failure_is_one_line_naming_the_distribution(entry_points, obj, why):
    from repscope.analyses import plugins

    entry_points.set_to(FakeEntryPoint("bad", "bad_pkg.plugin:PLUGIN", obj, "bad-pkg"))
    for _ in range(2):  # reported again on later calls, from the one read
        with pytest.raises(ConfigError) as err:
            plugins()
        msg = str(err.value)
        assert "\n" not in msg and "distribution 'bad-pkg'" in msg and why in msg and "uninstall bad-pkg" in msg
    assert len(entry_points.calls) == 1
