"""repscope.compat: backward compatibility between model versions (Shen et al. 2020, BCT; BT²; Stationary
Representations).

Can a new model's queries search the old model's index without re-embedding it? `cross_retrieval` measures
M(query model, gallery model) by label retrieval; `compatibility` gives the empirical criterion
M(new→old) > M(old,old) and the update gain; the registered transforms (`TRANSFORMS`: none, procrustes, ridge,
lstsq, bct) learn old↔new maps on a fit split; `compat_arrays` / `compat_stores` run it all on held-out samples and
return the compatibility table / a `Result`.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "ANALYSIS": "store", "BCTHead": "bct", "BCTMap": "transforms", "CompatMap": "transforms",
    "NEW_TO_OLD": "transforms", "OLD_TO_NEW": "transforms", "ProcrustesMap": "transforms", "RidgeMap": "transforms",
    "SCORES": "criterion", "TRANSFORMS": "transforms", "chance_recall": "criterion", "compat_arrays": "store",
    "compat_stores": "store", "compatibility": "criterion", "cross_retrieval": "criterion",
    "fit_eval_split": "store", "is_compatible": "criterion", "make_maps": "transforms",
    "resolve_transforms": "transforms", "update_gain": "criterion",
})
