"""Table-driven bad-input test: every case runs the real CLI entry point (`repscope.cli.main`) in-process and must
exit 2 with exactly one line on stderr naming the option, file or value, no traceback, and no file left behind.

In-process (sys.argv patched, stdout/stderr captured) because a fresh interpreter with torch costs seconds per case;
`test_cli_subprocess_one_line` checks a few cases through a real subprocess as well.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
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
    # --- issue 24: the rest of the corpus -------------------------------------------------------------------------
    np.savez(d / "strimg.npz", images=np.array([["a"] * 8] * 4))
    np.savez(d / "strlab.npz", images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array(["x", "y", "z", "w"]))
    _study(d / "dup.yaml", [ok, {**ok, "model": "digits-mlp:1"}])
    _study(d / "nostores.yaml", [])
    _study(d / "step_ray.yaml", [ok], [{"run": "probe", "stores": ["s"], "ray": "127.0.0.1:1"}])
    _study(d / "step_column.yaml", [ok], [{"run": "probe", "stores": ["s"], "params": {"target": "colour"}}])
    _study(d / "step_type.yaml", [ok], [{"run": "probe", "stores": ["s"], "params": {"cv": "five"}}])
    _changed_store_study(d / "changed", ok)
    _checkpoints(d, rng)
    _pending_files(d)
    return d


def _changed_store_study(d: Path, spec: dict) -> None:
    """A workdir holding store `s` extracted (by a study) for `spec`, and a study file now naming another model and
    dataset under the same name."""
    from repscope.store import write_store
    from repscope.study import StoreSpec, spec_record

    n = 20
    write_store(d / "runs" / "s", {"fc1": np.zeros((n, 4), np.float32)}, pd.DataFrame({"id": np.arange(n)}),
                provenance={"model": "digits_mlp_s0", "study_spec": spec_record(StoreSpec(**spec))})
    _study(d / "study.yaml", [{**spec, "model": "digits-mlp:1", "data": "digits@40"}])


def _rewrite_header(src: Path, dst: Path, edit) -> None:
    """Copy a safetensors file with its JSON header changed by `edit(header)` (data bytes untouched)."""
    b = src.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    edit(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    dst.write_bytes(struct.pack("<Q", len(h)) + h + b[8 + n:])


def _lie_about_shape(header: dict) -> None:
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [2 * s for s in header[name]["shape"]]


def _checkpoints(d: Path, rng) -> None:
    """A small SAE folder and learner file, each with corrupted copies: truncated data, a header whose shapes lie,
    a garbage config, and a config (hparams) that disagrees with the tensors."""
    import shutil

    from repscope.dictionary.sae import SAE
    from repscope.learn.autoencoder import Autoencoder

    x = rng.normal(size=(64, 8)).astype(np.float32)
    SAE(k=4, n_latents=16, n_steps=2, batch_size=32, device="cpu").fit(x).save(d / "sae")
    for v in ("trunc", "lie", "cfg", "hp"):
        shutil.copytree(d / "sae", d / f"sae_{v}")
    w = d / "sae_trunc" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    _rewrite_header(d / "sae" / "model.safetensors", d / "sae_lie" / "model.safetensors", _lie_about_shape)
    (d / "sae_cfg" / "config.json").write_text("{{{ not json", encoding="utf-8")
    cfg = json.loads((d / "sae_hp" / "config.json").read_text(encoding="utf-8"))
    cfg["module"].update(d_in=12, n_latents=24)
    (d / "sae_hp" / "config.json").write_text(json.dumps(cfg), encoding="utf-8")

    ae = d / "ae.safetensors"
    Autoencoder(latents=2, hidden=8, epochs=1, batch_size=16, progress=False, device="cpu").fit(x[:, :4]).save(ae)
    (d / "ae_trunc.safetensors").write_bytes(ae.read_bytes()[:-64])  # the header intact, the data cut short
    _rewrite_header(ae, d / "ae_lie.safetensors", _lie_about_shape)

    def garbage(h: dict) -> None:
        h["__metadata__"]["hparams"] = "{{{ garbage"

    def disagree(h: dict) -> None:
        hp = json.loads(h["__metadata__"]["hparams"])
        h["__metadata__"]["hparams"] = json.dumps({**hp, "hidden": 5})

    _rewrite_header(ae, d / "ae_cfg.safetensors", garbage)
    _rewrite_header(ae, d / "ae_hp.safetensors", disagree)


def _pending_files(d: Path) -> None:
    """`results --import` side files: one with a text `value`, one whose row lacks the NOT NULL `analysis`."""
    row = {"study": "s", "store": "x", "model": "m", "layer": "l0", "layer_b": None, "analysis": "probe",
           "metric": "accuracy", "value": 0.5, "params": "{}", "seconds": 1.0, "created": "2024-01-01T00:00:00",
           "layer_index": 0, "layer_b_index": None}
    base = {"repscope_pending": 1, "id": "abc123", "db": "x", "written": "2024-01-01T00:00:00", "artifacts": []}
    (d / "badvalue.pending.json").write_text(json.dumps({**base, "rows": [row, {**row, "value": "abc"}]}))
    (d / "nonull.pending.json").write_text(json.dumps({**base, "rows": [{k: v for k, v in row.items()
                                                                          if k != "analysis"}]}))


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
    # --- issue 24: generic `Type: …` messages before -----------------------------------------------------------
    ("sae_lr_negative", ["sae", "train", "{F}/store", "--layer", "l0", "--lr", "-1", "-o", "{OUT}"],
     ["--lr", "greater than 0"]),
    ("sae_lr_nan", ["sae", "train", "{F}/store", "--layer", "l0", "--lr", "nan", "-o", "{OUT}"], ["--lr", "finite"]),
    ("sae_expansion_nan", ["sae", "train", "{F}/store", "--layer", "l0", "--expansion", "nan", "-o", "{OUT}"],
     ["--expansion", "finite"]),
    ("adapter_lr_negative", ["adapter", "train", "{F}/store", "--layer", "l0", "--lr", "-1", "-o", "{OUT}.safetensors"],
     ["--lr", "greater than 0"]),
    ("adapter_lr_nan", ["adapter", "train", "{F}/store", "--layer", "l0", "--lr", "nan", "-o", "{OUT}.safetensors"],
     ["--lr", "finite"]),
    ("learn_lr_negative", ["learn", "train", "ae", "iris", "--lr", "-1", "-o", "{OUT}.safetensors"],
     ["--lr", "greater than 0"]),
    ("learn_lr_nan", ["learn", "train", "ae", "iris", "--lr", "nan", "-o", "{OUT}.safetensors"], ["--lr", "finite"]),
    ("npz_string_images", ["extract", "{F}/mlp.safetensors", "{F}/strimg.npz", "-o", "{OUT}"],
     ["strimg.npz", "'images'", "pixel"]),
    ("npz_string_labels", ["extract", "{F}/mlp.safetensors", "{F}/strlab.npz", "-o", "{OUT}"],
     ["strlab.npz", "'labels'", "integer"]),
    ("sae_checkpoint_truncated", ["sae", "inspect", "{F}/sae_trunc"], ["sae_trunc/model.safetensors", "damaged"]),
    ("sae_checkpoint_header_lies", ["sae", "inspect", "{F}/sae_lie"], ["sae_lie/model.safetensors", "damaged"]),
    ("sae_checkpoint_config_garbage", ["sae", "inspect", "{F}/sae_cfg"], ["sae_cfg/config.json", "not JSON"]),
    ("sae_checkpoint_hparams_disagree", ["sae", "inspect", "{F}/sae_hp"], ["sae_hp", "W_enc", "does not match"]),
    ("learner_truncated", ["extract", "{F}/ae_trunc.safetensors", "iris", "-o", "{OUT}"],
     ["ae_trunc.safetensors", "damaged"]),
    ("learner_header_lies", ["extract", "{F}/ae_lie.safetensors", "iris", "-o", "{OUT}"],
     ["ae_lie.safetensors", "damaged"]),
    ("learner_config_garbage", ["extract", "{F}/ae_cfg.safetensors", "iris", "-o", "{OUT}"],
     ["ae_cfg.safetensors", "header", "damaged"]),
    ("learner_hparams_disagree", ["extract", "{F}/ae_hp.safetensors", "iris", "-o", "{OUT}"],
     ["ae_hp.safetensors", "does not match its own config"]),
    ("learner_resume_hparams_disagree", ["learn", "train", "ae", "iris", "-o", "{F}/ae_hp.safetensors", "--resume"],
     ["ae_hp.safetensors", "does not match its own config"]),
    ("import_bad_value", ["results", "--import", "{F}/badvalue.pending.json"],
     ["badvalue.pending.json", "row 1", "'value'", "number"]),
    ("import_missing_not_null", ["results", "--import", "{F}/nonull.pending.json"],
     ["nonull.pending.json", "row 0", "'analysis'", "missing"]),
    ("ray_not_an_address", ["probe", "{F}/store", "--ray", "not an address"], ["'not an address'", "HOST:PORT"]),
    ("ray_client_address", ["probe", "{F}/store", "--ray", "ray://127.0.0.1:1"], ["ray://127.0.0.1:1"]),
    # --- issue 24: hangs --------------------------------------------------------------------------------------------
    ("ray_nothing_listening", ["probe", "{F}/store", "--ray", "127.0.0.1:1"], ["127.0.0.1:1", "cannot reach"]),
    ("ray_local_more_gpus_than_exist", ["truncate", "{F}/store", "--ray", "local", "--gpus-per-worker", "1000"],
     ["--gpus-per-worker 1000", "GPUs"]),
    ("study_step_ray_unreachable", ["study", "{F}/step_ray.yaml"], ["step_ray.yaml", "analyses.0.ray", "127.0.0.1:1"]),
    # --- issue 24: accepted before, refused now ------------------------------------------------------------------
    ("sae_epochs_negative", ["sae", "train", "{F}/store", "--layer", "l0", "--epochs", "-1", "-o", "{OUT}"],
     ["--epochs", "greater than 0"]),
    ("truncate_dims_empty_entry", ["truncate", "{F}/store", "--dims", "8,,16"], ["--dims", "'8,,16'", "empty"]),
    ("quantize_embeddings_no_scheme", ["quantize-embeddings", "{F}/store", "--schemes", ""], ["schemes", "no value"]),
    ("disentangle_max_rows_3", ["disentangle", "{F}/store", "--factors", "label", "--max-rows", "3"],
     ["--max-rows", "10"]),
    ("disentangle_factor_per_row", ["disentangle", "{F}/store", "--factors", "id"], ["'id'", "60 distinct values"]),
    ("learn_simclr_tabular", ["learn", "train", "simclr", "iris", "-o", "{OUT}.safetensors"],
     ["simclr", "tabular", "iris"]),
    ("study_duplicate_store_names", ["study", "{F}/dup.yaml"], ["dup.yaml", "'s'", "twice"]),
    ("study_no_stores", ["study", "{F}/nostores.yaml"], ["nostores.yaml", "no stores"]),
    ("study_store_spec_changed", ["study", "{F}/changed/study.yaml"],
     ["store 's'", "digits-mlp:1", "digits@40", "--overwrite"]),
    ("study_step_unknown_column", ["study", "{F}/step_column.yaml"], ["step_column.yaml", "'colour'", "store 's'"]),
    # --- issue 24: refusals that left files behind (default outputs land in the work folder) ------------------------
    ("sae_k_0_default_out", ["sae", "train", "{F}/store", "--layer", "l0", "--k", "0"], ["--k"]),
    ("sae_unknown_layer_default_out", ["sae", "train", "{F}/store", "--layer", "l3"], ["l3"]),
    ("sae_batch_size_0_default_out", ["sae", "train", "{F}/store", "--layer", "l0", "--batch-size", "0"],
     ["--batch-size"]),
    ("study_type_error_with_db", ["study", "{F}/step_type.yaml", "--db", "{OUT}.duckdb"], ["step_type.yaml", "'cv'"]),
]

NEEDS_RAY = {"ray_local_more_gpus_than_exist"}  # the package itself; every other --ray case fails before needing it
MAX_SECONDS = 30.0  # no refusal may take longer (a hang is a failure, not a slow pass)


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

    if case_id in NEEDS_RAY:
        pytest.importorskip("ray")
    args = [fill(a) for a in argv]
    before = _listing(work, fx)
    t0 = time.perf_counter()
    code, out, err = _run_in_process(args, capsys)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}; stderr: {err!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert "Traceback" not in err + out
    for want in expected:
        assert fill(want) in lines[0], f"{fill(want)!r} not in {lines[0]!r}"
    assert _listing(work, fx) == before, "files were left behind"
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s"


def test_cli_subprocess_one_line(fx, tmp_path, cli):
    """The same contract through a real process (`python -m repscope.cli`, real stderr, rich console)."""
    for args, want in [(["extract", str(fx / "mlp.safetensors"), "digits", "-o", str(tmp_path / "o"),
                         "--batch-size", "ten"], "--batch-size"),
                       (["extract", "minilm", "templates:abc", "-o", str(tmp_path / "o")], "templates:abc")]:
        r = cli(*args, cwd=tmp_path)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and want in lines[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ray_address_checks(monkeypatch):
    """`--ray` values are checked before any work: malformed addresses are refused, a ray:// address without the
    client extra names the extra, an address where nothing listens fails within the probe timeout, and a listening
    address passes (the check must not refuse a reachable cluster)."""
    import importlib.util
    import socket

    from repscope.distributed import cluster
    from repscope.errors import ConfigError, RepscopeError

    for bad in ("not an address", "host:", ":6379", "host:abc", "host:70000", "ray://", "a b:1"):
        with pytest.raises(ConfigError, match="is not a Ray address"):
            cluster.check_address(bad)
    with pytest.raises(ConfigError, match="needs a value"):
        cluster.check_address("  ")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a))
    with pytest.raises(RepscopeError, match=r"ray\[client\]"):
        cluster.check_address("ray://127.0.0.1:1")
    monkeypatch.undo()
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(RepscopeError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
            cluster.check_address(f"127.0.0.1:{port}")  # bound but not listening: refused at once
        assert time.perf_counter() - t0 < 2
    # a listening server: one answering as an HTTP/2 (gRPC) server does passes, a web server is refused
    for reply, ok in ((bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]), True), (b"HTTP/1.1 400 Bad Request\r\n\r\n", False)):
        with _one_reply_server(reply) as port:
            if ok and importlib.util.find_spec("ray") is not None:
                assert cluster.check_address(f"127.0.0.1:{port}") == f"127.0.0.1:{port}"
            else:  # without ray installed, a reachable cluster still needs the package
                want = "needs the ray package" if ok else f"'127.0.0.1:{port}' answers but is no Ray cluster"
                with pytest.raises(RepscopeError, match=want):
                    cluster.check_address(f"127.0.0.1:{port}")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(RepscopeError, match="127.0.0.1:1"):
        cluster.check_address("auto")  # auto follows RAY_ADDRESS, so it is probed too


class _one_reply_server:
    """A local TCP server (context manager yielding its port) that sends `reply` to the first client once it has
    read the client's first bytes, then closes."""

    def __init__(self, reply: bytes):
        import socket
        import threading

        self.reply = reply
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            conn.recv(64)
            conn.sendall(self.reply)

    def __enter__(self) -> int:
        self.thread.start()
        return self.srv.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.thread.join(timeout=10)
        self.srv.close()


def test_gpu_check_refuses_more_gpus_than_exist():
    from repscope.distributed.cluster import RayError, check_gpus

    check_gpus(0.0, 0, "this machine")
    check_gpus(0.5, 1, "this machine")
    with pytest.raises(RayError, match="--gpus-per-worker 1 asks for GPUs but this machine has 0 GPUs"):
        check_gpus(1.0, 0, "this machine")
    with pytest.raises(RayError, match="has 2 GPUs"):
        check_gpus(3.0, 2, "the Ray cluster at 'x:1'")


def test_shared_constraints_hold_for_cli_and_study():
    """One declaration per constraint: the study param models refuse what the CLI options refuse."""
    from repscope.compress.study import AdapterParams, QuantizeEmbeddingsParams, TruncateParams
    from repscope.dictionary.study import SaeParams
    from repscope.disentangle.study import DisentangleParams
    from repscope.errors import ConfigError
    from repscope.learn.study import LearnParams

    bad = [(SaeParams, {"layer": "l0", "lr": float("nan")}), (SaeParams, {"layer": "l0", "expansion": float("inf")}),
           (SaeParams, {"layer": "l0", "n_epochs": -1}), (AdapterParams, {"layer": "l0", "lr": -1.0}),
           (LearnParams, {"learner": "ae", "data": "iris", "lr": float("nan")}),
           (TruncateParams, {"dims": "8,,16"}), (AdapterParams, {"layer": "l0", "dims": "8,"}),
           (QuantizeEmbeddingsParams, {"schemes": ""}), (QuantizeEmbeddingsParams, {"schemes": []}),
           (DisentangleParams, {"factors": ["label"], "max_rows": 3})]
    for model, params in bad:
        with pytest.raises((ConfigError, ValueError)):
            model(**params)
    assert TruncateParams(dims="8, 16").dims == [8, 16]
    assert QuantizeEmbeddingsParams(schemes="int8").schemes == ["int8"]
