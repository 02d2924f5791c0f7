"""Generic check of every registered geometry measure's declared invariances (see repscope.geometry.measures; the
checker is `repscope.testing.check_geometry_invariances`, reusable for a new measure)."""

from __future__ import annotations

import pytest

from repscope.geometry.measures import MEASURES, default_measures
from repscope.testing import GEOMETRY_TRANSFORMS, check_geometry_invariances

CASES = [(e.name, t) for e in MEASURES.entries() for t in GEOMETRY_TRANSFORMS
         if getattr(e.obj, f"invariant_to_{t}") is not None]


def test_every_measure_declares_something():
    for m in MEASURES.values():
        flags = [getattr(m, f"invariant_to_{t}") for t in GEOMETRY_TRANSFORMS]
        assert any(f is not None for f in flags), m.name
        assert MEASURES.metadata(m.name)["invariances"] == dict(zip(GEOMETRY_TRANSFORMS, flags, strict=True))


def test_every_built_in_measure_runs_by_default():
    assert default_measures()[:15] == MEASURES.names()[:15]  # the 15 shipped measures; later ones may opt out


@pytest.mark.parametrize("measure,transform", CASES, ids=[f"{m}-{t}" for m, t in CASES])
def test_declared_invariance(measure, transform):
    assert check_geometry_invariances(MEASURES.get(measure), (transform,)) == []
