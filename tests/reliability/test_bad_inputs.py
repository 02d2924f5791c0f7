"""Table-driven bad-input test: every case runs the real CLI entry point (`repscope.cli.main`) in-process and must
exit 2 with exactly one line on stderr naming the option, file or value, no traceback, and no file left behind.

In-process (sys.argv patched, stdout/stderr captured) because a fresh interpreter with torch costs seconds per case;
`test_cli_subprocess_one_line` checks a few cases through a real subprocess as well.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# ---------------------------------------------------------------------------------------------------------------
# fixtures: one folder of small bad (and good) inputs, built once per module


def _study(path: Path, stores: list[dict], analyses: list[dict] | None = None, **top) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"name": "t", "workdir": "runs", "stores": stores, "analyses": analyses or [],
                                    **top}), encoding="utf-8")


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    from repscope.sources.zoo.mlp import build_digits_mlp, save_mlp
    from repscope.store import write_store

    d = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    n = 60
    samples = pd.DataFrame({"id": np.arange(n), "label": np.arange(n) % 3, "topic": (np.arange(n) // 3) % 2,
                            "text": [f"sentence {i}" for i in range(n)]})
    write_store(d / "store", {"l0": rng.normal(size=(n, 8)).astype(np.float32),
                              "l1": rng.normal(size=(n, 8)).astype(np.float32)}, samples)
    save_mlp(build_digits_mlp(16, seed=0), d / "mlp.safetensors")
    (d / "junk.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    (d / "emptydir").mkdir()
    (d / "afile.txt").write_text("I am a file\n", encoding="utf-8")
    # TSVs
    (d / "latin1.tsv").write_bytes("label\ttext\n1\tcaf\u00e9 cr\u00e8me\n".encode("latin-1"))
    (d / "empty.tsv").write_text("label\ttext\n", encoding="utf-8")
    (d / "nohdr.tsv").write_text("label\tsentence\n1\thello\n", encoding="utf-8")
    (d / "badcols.tsv").write_text("label\ttext\n1\tgood\n0\tbad\textra\n", encoding="utf-8")
    # npz images
    np.savez(d / "neg.npz", images=np.linspace(-1, 1, 4 * 8 * 8 * 3, dtype=np.float32).reshape(4, 8, 8, 3))
    np.savez(d / "big.npz", images=np.linspace(0, 300, 4 * 8 * 8 * 3, dtype=np.float32).reshape(4, 8, 8, 3))
    np.savez(d / "nokey.npz", pixels=np.zeros((2, 8, 8, 3), np.uint8))
    (d / "junk.npz").write_bytes(b"PK not really a zip")
    # studies
    ok = {"name": "s", "model": "digits-mlp:0", "data": "digits@50"}
    (d / "latin1.yaml").write_bytes("name: caf\u00e9\nstores: []\n".encode("latin-1"))
    _study(d / "escape.yaml", [{**ok, "name": "../../escape"}])
    _study(d / "absolute.yaml", [{**ok, "name": str(d / "abs_store")}])
    _study(d / "slash.yaml", [{**ok, "name": "a/b"}])
    _study(d / "dotdot.yaml", [{**ok, "name": ".."}])
    _study(d / "unknown_field.yaml", [{**ok, "colour": "red"}])
    _study(d / "unknown_step.yaml", [ok], [{"run": "telepathy", "stores": ["s"]}])
    _study(d / "undefined_store.yaml", [ok], [{"run": "probe", "stores": ["ghost"]}])
    _study(d / "batch0.yaml", [{**ok, "batch_size": 0}])
    _study(d / "dtype.yaml", [{**ok, "dtype": "float8"}])
    (d / "badyaml.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def ro_dir(tmp_path_factory) -> Path:
    """A folder nobody may write in: a chmod 555 folder, or /sys when running as root (root ignores mode bits)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("running as root without /sys: no folder root cannot write to")
        return Path("/sys")
    d = tmp_path_factory.mktemp("readonly")
    d.chmod(0o555)
    return d


# ---------------------------------------------------------------------------------------------------------------
# the table: (id, argv with {F} = fixtures, {OUT} = a fresh output path in the case's work folder, {RO} = read-only
# folder), strings the one stderr line must contain


CASES: list[tuple[str, list[str], list[str]]] = [
    # --- the defects listed in issue 11 -------------------------------------------------------------------------
    ("non_utf8_tsv", ["extract", "{F}/mlp.safetensors", "{F}/latin1.tsv", "-o", "{OUT}"], ["latin1.tsv", "UTF-8"]),
    ("non_utf8_yaml", ["study", "{F}/latin1.yaml"], ["latin1.yaml", "UTF-8"]),
    ("templates_abc", ["extract", "minilm", "templates:abc", "-o", "{OUT}"], ["templates:abc", "integer"]),
    ("templates_negative", ["extract", "minilm", "templates:-5", "-o", "{OUT}"], ["templates:-5", "positive"]),
    ("templates_zero", ["extract", "minilm", "templates:0", "-o", "{OUT}"], ["templates:0", "positive"]),
    ("digits_mlp_abc", ["extract", "digits-mlp:abc", "digits", "-o", "{OUT}"], ["digits-mlp:abc", "integer"]),
    ("out_is_a_file", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{F}/afile.txt"], ["afile.txt"]),
    ("out_read_only", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{RO}/repscope_store"], ["{RO}"]),
    ("batch_size_ten", ["extract", "{F}/mlp.safetensors", "digits", "-o", "{OUT}", "--batch-size", "ten"],
     ["--batch-size", "ten"]),
    ("geometry_params_unknown_key", ["geometry", "{F}/store", "--measures", "mle", "--params", '{"mle": {"kk": 5}}'],
     ["kk", "k1", "k2"]),
    ("sae_batch_size_0", ["sae", "train", "{F}/store", "--layer", "l0", "--batch-size", "0", "-o", "{OUT}"],
     ["--batch-size"]),
    ("sae_holdout_negative", ["sae", "train", "{F}/store", "--layer", "l0", "--holdout", "-1", "-o", "{OUT}"],
     ["--holdout"]),
    ("quantize_bits_0", ["quantize", "{F}/store", "--layer", "l0", "--bits", "0"], ["--bits", "0"]),
    ("probe_cv_1", ["probe", "{F}/store", "--cv", "1"], ["--cv", "1"]),
    ("probe_cv_negative", ["probe", "{F}/store", "--cv", "-3"], ["--cv", "-3"]),
    ("row_limit_zero", ["extract", "{F}/mlp.safetensors", "digits@0", "-o", "{OUT}"], ["digits@0"]),
    ("npz_negative_floats", ["extract", "{F}/mlp.safetensors", "{F}/neg.npz", "-o", "{OUT}"], ["neg.npz", "[-1, 1]"]),
    ("npz_floats_over_255", ["extract", "{F}/mlp.safetensors", "{F}/big.npz", "-o", "{OUT}"], ["big.npz", "300"]),
    ("pooling_cls_on_mlp", ["extract", "{F}/mlp.safetensors", "digits@20", "-o", "{OUT}", "--pooling", "cls"],
     ["cls", "fc1", "sequence"]),
    ("study_store_escapes", ["study", "{F}/escape.yaml"], ["../../escape"]),
    ("study_store_absolute", ["study", "{F}/absolute.yaml"], ["abs_store"]),
    ("study_store_slash", ["study", "{F}/slash.yaml"], ["a/b"]),
    ("study_store_dotdot", ["study", "{F}/dotdot.yaml"], ["'..'"]),
    # --- extraction: specs, files, options ---------------------------------------------------------------------
    ("unknown_model", ["extract", "gpt-17", "digits", "-o", "{OUT}"], ["gpt-17"]),
    ("model_file_missing", ["extract", "{F}/nope.safetensors", "digits", "-o", "{OUT}"], ["nope.safetensors"]),
    ("model_file_corrupt", ["extract", "{F}/junk.safetensors", "digits", "-o", "{OUT}"], ["junk.safetensors"]),
    ("model_folder_empty", ["extract", "{F}/emptydir", "digits", "-o", "{OUT}"], ["emptydir"]),
    ("dataset_missing_tsv", ["extract", "{F}/mlp.safetensors", "{F}/nope.tsv", "-o", "{OUT}"], ["nope.tsv"]),
    ("dataset_unknown_name", ["extract", "{F}/mlp.safetensors", "mnist", "-o", "{OUT}"], ["mnist"]),
    ("dataset_folder", ["extract", "{F}/mlp.safetensors", "{F}/emptydir", "-o", "{OUT}"], ["emptydir"]),
    ("dataset_unknown_suffix", ["extract", "{F}/mlp.safetensors", "{F}/afile.txt", "-o", "{OUT}"], ["afile.txt"]),
    ("row_limit_text", ["extract", "{F}/mlp.safetensors", "digits@ten", "-o", "{OUT}"], ["digits@ten"]),
    ("shared_file_missing", ["extract", "{F}/mlp.safetensors", "shared:text/nope/none.tsv", "-o", "{OUT}"],
     ["none.tsv"]),
    ("tsv_header_only", ["extract", "{F}/mlp.safetensors", "{F}/empty.tsv", "-o", "{OUT}"], ["empty"]),
    ("tsv_no_text_column", ["extract", "{F}/mlp.safetensors", "{F}/nohdr.tsv", "-o", "{OUT}"],
     ["nohdr.tsv", "'text'"]),
    ("tsv_bad_row", ["extract", "{F}/mlp.safetensors", "{F}/badcols.tsv", "-o", "{OUT}"], ["badcols.tsv", "line 3"]),
    ("npz_corrupt", ["extract", "{F}/mlp.safetensors", "{F}/junk.npz", "-o", "{OUT}"], ["junk.npz"]),
    ("npz_no_images_key", ["extract", "{F}/mlp.safetensors", "{F}/nokey.npz", "-o", "{OUT}"], ["nokey.npz", "images"]),
    ("text_into_mlp", ["extract", "{F}/mlp.safetensors", "templates:8", "-o", "{OUT}"], ["text"]),
    ("wrong_width_data", ["extract", "{F}/mlp.safetensors", "iris", "-o", "{OUT}"], ["iris"]),
    ("unknown_layer", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--layers", "fc9"], ["fc9"]),
    ("unknown_pooling", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--pooling", "median"],
     ["median"]),
    ("unknown_dtype", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--dtype", "float8"],
     ["float8"]),
    ("unknown_device", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--device", "tpu"], ["tpu"]),
    ("batch_size_zero", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--batch-size", "0"],
     ["--batch-size"]),
    ("chunk_rows_zero", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--chunk-rows", "0"],
     ["--chunk-rows"]),
    ("seed_not_int", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--seed", "x1"], ["--seed"]),
    ("unknown_option", ["extract", "{F}/mlp.safetensors", "digits@10", "-o", "{OUT}", "--colour", "red"],
     ["--colour"]),
    ("missing_out", ["extract", "{F}/mlp.safetensors", "digits@10"], ["--out"]),
    ("missing_data_argument", ["extract", "{F}/mlp.safetensors"], ["data"]),
    ("unknown_command", ["extrakt", "minilm"], ["extrakt"]),
    ("layers_unknown_model", ["layers", "bert-huge"], ["bert-huge"]),
    ("zoo_epochs_not_int", ["zoo", "train-mlp", "--epochs", "many"], ["--epochs"]),
    # --- stores and analyses -------------------------------------------------------------------------------------
    ("info_missing_store", ["info", "{F}/nostore"], ["nostore"]),
    ("info_file_not_store", ["info", "{F}/afile.txt"], ["afile.txt"]),
    ("verify_missing_store", ["verify", "{F}/nostore"], ["nostore"]),
    ("probe_unknown_target", ["probe", "{F}/store", "--target", "colour"], ["colour"]),
    ("probe_unknown_probe", ["probe", "{F}/store", "--probe", "oracle"], ["oracle"]),
    ("probe_unknown_layer", ["probe", "{F}/store", "--layers", "l9"], ["l9"]),
    ("probe_test_size", ["probe", "{F}/store", "--test-size", "1.5"], ["--test-size"]),
    ("probe_cv_not_int", ["probe", "{F}/store", "--cv", "five"], ["--cv", "five"]),
    ("geometry_unknown_measure", ["geometry", "{F}/store", "--measures", "curvature"], ["curvature"]),
    ("geometry_params_bad_json", ["geometry", "{F}/store", "--params", "{mle: 5"], ["--params"]),
    ("geometry_params_not_object", ["geometry", "{F}/store", "--measures", "mle", "--params", '{"mle": 5}'],
     ["--params"]),
    ("geometry_unknown_layer", ["geometry", "{F}/store", "--layers", "l7"], ["l7"]),
    ("compare_unknown_measure", ["compare", "{F}/store", "--measure", "telepathy"], ["telepathy"]),
    ("compare_missing_store_b", ["compare", "{F}/store", "{F}/nostore"], ["nostore"]),
    ("match_unknown_layer", ["match", "{F}/store", "{F}/store", "--layer", "l5"], ["l5"]),
    ("sae_unknown_layer", ["sae", "train", "{F}/store", "--layer", "l3", "-o", "{OUT}"], ["l3"]),
    ("sae_unknown_arch", ["sae", "train", "{F}/store", "--layer", "l0", "--arch", "magic", "-o", "{OUT}"],
     ["magic"]),
    ("sae_holdout_one", ["sae", "train", "{F}/store", "--layer", "l0", "--holdout", "1", "-o", "{OUT}"],
     ["--holdout"]),
    ("sae_inspect_missing", ["sae", "inspect", "{F}/nosae"], ["nosae"]),
    ("sae_out_is_a_file", ["sae", "train", "{F}/store", "--layer", "l0", "-o", "{F}/afile.txt"], ["afile.txt"]),
    ("sae_out_read_only", ["sae", "train", "{F}/store", "--layer", "l0", "-o", "{RO}/sae_dir"], ["{RO}"]),
    ("quantize_unknown_method", ["quantize", "{F}/store", "--layer", "l0", "--method", "zip"], ["zip"]),
    ("quantize_holdout_negative", ["quantize", "{F}/store", "--layer", "l0", "--holdout", "-2"], ["--holdout"]),
    ("quantize_unknown_layer", ["quantize", "{F}/store", "--layer", "l4"], ["l4"]),
    # --- studies -------------------------------------------------------------------------------------------------
    ("study_missing_file", ["study", "{F}/nope.yaml"], ["nope.yaml"]),
    ("study_invalid_yaml", ["study", "{F}/badyaml.yaml"], ["badyaml.yaml"]),
    ("study_unknown_field", ["study", "{F}/unknown_field.yaml"], ["colour"]),
    ("study_unknown_step", ["study", "{F}/unknown_step.yaml"], ["telepathy"]),
    ("study_undefined_store", ["study", "{F}/undefined_store.yaml"], ["ghost"]),
    ("study_batch_size_0", ["study", "{F}/batch0.yaml"], ["batch_size"]),
    ("study_bad_dtype", ["study", "{F}/dtype.yaml"], ["dtype"]),
]


def _listing(*roots: Path) -> set[str]:
    out = set()
    for r in roots:
        if r.is_dir():
            out |= {str(p) for p in r.rglob("*")}
    return out


def _run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    """`repscope ARGV` through `repscope.cli.main` with sys.argv patched; (exit code, stdout, stderr)."""
    from repscope import cli

    old = sys.argv
    sys.argv = ["repscope", *argv]
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def test_table_has_at_least_60_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, argv, expected, fx, ro_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default outputs (repscope.duckdb, sae/…) would land here
    for var in ("REPSCOPE_DB", "REPSCOPE_DEBUG", "REPSCOPE_STUDY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REPSCOPE_SHARED", str(fx))  # shared:… specs resolve under the fixtures (no data/ there)
    subst = {"{F}": str(fx), "{OUT}": str(work / "out"), "{RO}": str(ro_dir)}

    def fill(s: str) -> str:
        for k, v in subst.items():
            s = s.replace(k, v)
        return s

    args = [fill(a) for a in argv]
    before = _listing(work, fx)
    code, out, err = _run_in_process(args, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}; stderr: {err!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert "Traceback" not in err + out
    for want in expected:
        assert fill(want) in lines[0], f"{fill(want)!r} not in {lines[0]!r}"
    assert _listing(work, fx) == before, "files were left behind"


def test_cli_subprocess_one_line(fx, tmp_path, cli):
    """The same contract through a real process (`python -m repscope.cli`, real stderr, rich console)."""
    for args, want in [(["extract", str(fx / "mlp.safetensors"), "digits", "-o", str(tmp_path / "o"),
                         "--batch-size", "ten"], "--batch-size"),
                       (["extract", "minilm", "templates:abc", "-o", str(tmp_path / "o")], "templates:abc")]:
        r = cli(*args, cwd=tmp_path)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and want in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
