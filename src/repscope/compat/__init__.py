"""repscope.compat: backward compatibility between model versions (Shen et al. 2020, BCT; BT²; Stationary
Representations).

Can a new model's queries search the old model's index without re-embedding it? `cross_retrieval` measures
M(query model, gallery model) by label retrieval; `compatibility` gives the empirical criterion
M(new→old) > M(old,old) and the update gain; the registered transforms (`TRANSFORMS`: none, procrustes, ridge,
lstsq, bct) learn old↔new maps on a fit split; `compat_arrays` / `compat_stores` run it all on held-out samples and
return the compatibility table / a `Result`.

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.compat.bct import BCTHead
    from repscope.compat.criterion import (
        SCORES,
        chance_recall,
        compatibility,
        cross_retrieval,
        is_compatible,
        update_gain,
    )
    from repscope.compat.store import ANALYSIS, compat_arrays, compat_stores, fit_eval_split
    from repscope.compat.transforms import (
        NEW_TO_OLD,
        OLD_TO_NEW,
        TRANSFORMS,
        BCTMap,
        CompatMap,
        ProcrustesMap,
        RidgeMap,
        make_maps,
        resolve_transforms,
    )
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "ANALYSIS", "BCTHead", "BCTMap", "CompatMap", "NEW_TO_OLD", "OLD_TO_NEW", "ProcrustesMap", "RidgeMap", "SCORES",
    "TRANSFORMS", "chance_recall", "compat_arrays", "compat_stores", "compatibility", "cross_retrieval",
    "fit_eval_split", "is_compatible", "make_maps", "resolve_transforms", "update_gain",
]
