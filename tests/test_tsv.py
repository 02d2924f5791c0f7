"""TSV reading: RFC 4180 quoted files (pandas, Python's csv) and raw files with stray quotes are both read right."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from repscope.errors import ConfigError, DataError
from repscope.sources.datasets import load_sts_pairs, load_tsv_text, read_tsv, tsv_records
from repscope.sources.load import load_dataset

# texts a writer must quote: quotes (inner, leading, trailing, alone), tabs, newlines, CRLF-free, empty
HARD_TEXTS = [
    'it\'s a "fun" movie',
    '"starts and ends with quotes"',
    'a tab\there and "quotes"',
    "two\nlines",
    '"',
    '""',
    "",
    "plain text",
    'ends with a quote"',
    'mixed "\t\n" all',
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"label": [str(i % 3) for i in range(len(HARD_TEXTS))], "text": HARD_TEXTS})


def _as_str(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(str).reset_index(drop=True)


def test_pandas_written_tsv_round_trips(tmp_path):
    p = tmp_path / "pandas.tsv"
    _frame().to_csv(p, sep="\t", index=False)
    assert '"' in p.read_text(encoding="utf-8")  # pandas did quote
    pd.testing.assert_frame_equal(_as_str(read_tsv(p)), _as_str(_frame()))


@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])
def test_csv_module_written_tsv_round_trips(tmp_path, quoting):
    p = tmp_path / "csvmod.tsv"
    df = _frame()
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=quoting)  # lineterminator \r\n, as the csv module writes it
        w.writerow(df.columns)
        w.writerows(df.itertuples(index=False))
    pd.testing.assert_frame_equal(_as_str(read_tsv(p)), _as_str(df))


def test_quoted_labels_and_texts_through_load_tsv_text(tmp_path):
    p = tmp_path / "q.tsv"
    _frame().to_csv(p, sep="\t", index=False)
    ds = load_tsv_text(p)
    assert ds.items(0, len(HARD_TEXTS)) == HARD_TEXTS
    assert ds.samples["label"].tolist() == [i % 3 for i in range(len(HARD_TEXTS))]  # numeric labels parsed


def test_raw_tsv_with_stray_quotes_is_read_literally(tmp_path):
    """GLUE-style raw text: quotes are characters, not quoting. An unbalanced quote must not swallow lines."""
    lines = ['0\tit \'s a " fun " movie', '1\t" a line that starts with a quote', '0\tjust "one', '1\tthe end "',
             '0\t"quoted" then more']
    p = tmp_path / "raw.tsv"
    p.write_text("label\ttext\n" + "\n".join(lines) + "\n", encoding="utf-8")
    df = read_tsv(p)
    assert df["text"].tolist() == [ln.split("\t", 1)[1] for ln in lines]
    assert df["label"].tolist() == ["0", "1", "0", "1", "0"]
    # pandas' default (RFC) reading of this file would mangle it; the detection picked literal reading
    assert pd.read_csv(io.StringIO(p.read_text()), sep="\t", dtype=str)["text"].tolist() != df["text"].tolist()


def test_forced_quoting_modes(tmp_path):
    raw, quoted = tmp_path / "raw.tsv", tmp_path / "quoted.tsv"
    raw.write_text('label\ttext\n0\tsay "hi" twice\n', encoding="utf-8")
    quoted.write_text('label\ttext\n0\t"say ""hi"" twice"\n', encoding="utf-8")
    assert read_tsv(quoted)["text"].tolist() == ['say "hi" twice']
    assert read_tsv(raw)["text"].tolist() == ['say "hi" twice']
    assert read_tsv(quoted, quoting="none")["text"].tolist() == ['"say ""hi"" twice"']
    with pytest.raises(DataError, match=r"raw.tsv line 2: not valid RFC 4180"):
        read_tsv(raw, quoting="rfc4180")
    with pytest.raises(ConfigError, match="unknown TSV quoting 'excel'"):
        read_tsv(raw, quoting="excel")


def test_line_numbers_count_newlines_inside_quoted_fields(tmp_path):
    p = tmp_path / "ml.tsv"
    p.write_text('label\ttext\n0\t"line one\nline two"\n1\tok\n2\tbad\textra\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"ml.tsv line 5: expected 2 tab-separated fields"):
        read_tsv(p)
    assert [n for n, _ in tsv_records(p)] == [1, 2, 4, 5]


def test_crlf_bom_and_trailing_empty_field(tmp_path):
    p = tmp_path / "win.tsv"
    p.write_bytes("\ufefflabel\ttext\tnote\r\n1\thello\t\r\n0\t\"a \"\"b\"\"\"\tx\r\n".encode())
    df = read_tsv(p)
    assert list(df.columns) == ["label", "text", "note"]
    assert df.values.tolist() == [["1", "hello", ""], ["0", 'a "b"', "x"]]


def test_non_utf8_tsv_names_the_file(tmp_path):
    p = tmp_path / "latin1.tsv"
    p.write_bytes("label\ttext\n1\tcaf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.tsv' is not UTF-8 text \(byte 0xe9"):
        read_tsv(p)
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(str(p))


def test_real_stsb_is_quoted_and_matches_the_csv_module():
    from conftest import require_shared

    p = require_shared("text", "stsb", "dev.tsv")
    with open(p, encoding="utf-8", newline="") as f:
        ref = list(csv.reader(f, delimiter="\t"))  # Python's own RFC 4180 reader as the reference
    df = read_tsv(p, ("sentence1", "sentence2"))
    assert df.columns.tolist() == ref[0]
    assert df.values.tolist() == ref[1:]
    quoted = [s for s in df["sentence1"].tolist() + df["sentence2"].tolist() if '"' in s]
    assert quoted and not any('""' in s for s in quoted)  # doubled quotes were undone, not kept as text
    ds = load_sts_pairs(p)
    assert len(ds) == 2 * len(ref[1:]) and ds.samples["score"].between(0, 5).all()


def test_real_sst2_matches_a_plain_tab_split():
    from conftest import require_shared

    p = require_shared("text", "sst2", "train.tsv")
    lines = p.read_text(encoding="utf-8").splitlines()
    df = read_tsv(p)
    assert df.values.tolist() == [ln.split("\t") for ln in lines[1:] if ln.strip()]
