"""One generic test: every registered measure's declared properties, checked by applying each transform
(the checker is `repscope.testing.check_similarity_properties`, reusable for a new measure)."""

from __future__ import annotations

import pytest

from repscope.similarity.registry import MEASURES, PROPERTIES
from repscope.testing import check_similarity_properties


def test_every_measure_declares_every_property():
    assert len(MEASURES) >= 14
    for entry in MEASURES.entries():
        m = entry.obj
        assert set(m.properties) == set(PROPERTIES)
        assert m.kind in ("similarity", "distance")
        assert entry.metadata["kind"] == m.kind and entry.metadata["paper"] == m.paper


@pytest.mark.parametrize("name", MEASURES.names())
def test_declared_properties_hold(name: str):
    assert check_similarity_properties(MEASURES.get(name)) == []


def test_aliases_resolve_to_the_registered_measures():
    for alias, name in {"cka": "linear_cka", "mknn": "mutual_knn", "cca": "mean_cca", "jaccard": "knn_jaccard",
                        "shape": "shape_angular", "procrustes": "procrustes", " CKA ": "linear_cka"}.items():
        assert MEASURES.get(alias) is MEASURES.get(name)
