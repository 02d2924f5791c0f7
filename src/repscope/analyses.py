"""The one declared list of analysis plugins: the CLI, studies, the demo and the report all iterate `PLUGINS`.

A plugin declares its name, its place in the pipeline (`order`: stores → probes → similarity → geometry →
dictionaries → compression/compatibility → disentanglement → learners), how it adds CLI commands, its study steps
(each with a pydantic params model checked when the study file loads), its report sections, its lines of the
report's findings overview (`findings(frame, artifacts) -> list[Finding]`), its family title and its demo step.
Everything is referenced lazily ("module:attr" strings or callables), so importing this module stays cheap.

Add a package: write `cli.py` (`register(app)`), `study.py` (step functions + params models), `report.py`
(`report_sections(frame, artifacts)`) and `demo.py` (`run(ctx)`), then add one `AnalysisPlugin` below. A
third-party package advertises its plugin under the entry-point group `repscope.plugins` (pyproject:
`[project.entry-points."repscope.plugins"] mine = "my_pkg.plugin:PLUGIN"`); `plugins()` registers it on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repscope.errors import ConfigError

Ref = str | Callable[..., Any]  # "package.module:attribute" or the object itself

# pipeline positions (gaps leave room for new packages)
STORES, PROBES, SIMILARITY, GEOMETRY, DICTIONARIES, COMPRESSION, DISENTANGLEMENT, LEARNERS = range(0, 80, 10)


def resolve(ref: Ref | None) -> Any:
    """The object a `Ref` names: import `module` and return `attr` for "module:attr"; callables pass through."""
    if ref is None or not isinstance(ref, str):
        return ref
    mod, _, attr = ref.partition(":")
    obj = importlib.import_module(mod)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class StudyStep:
    """One `run:` name of a study file, params checked by `params_model` (a pydantic model with `extra="forbid"`).

    A step that can run in parallel declares `plan(stores, params) -> list[Unit]` and optionally
    `combine(stores, params, parts) -> Result` (default: the units' Results concatenated in plan order), or a `plan`
    returning an object with `.units` and `.combine(parts)` (what it worked out travels with its units); any
    executor (`repscope.distributed.executor`: local or Ray) runs the units. A step with only `fn(stores, **params)`
    runs in this process. All are Refs, resolved on use."""

    name: str
    fn: Ref | None
    params_model: Ref
    plan: Ref | None = None
    combine: Ref | None = None
    command: str | None = None  # the CLI command running the same analysis ("sae train"): its options are the
    # params model's fields, same names, defaults and choices (tests/test_params_declared.py) …
    command_only: tuple[str, ...] = ()  # … but for these options of the command alone (files it writes, say)

    def model(self) -> Any:
        """The resolved pydantic params model."""
        return resolve(self.params_model)

    @property
    def distributable(self) -> bool:
        """Whether the step plans units an executor can spread over workers."""
        return self.plan is not None

    def run(self, stores: list[Any], params: Any, executor: Any = None) -> Any:
        """Run the step on `stores` with validated `params` (a params-model instance) on `executor` (default: this
        process); returns its `Result`."""
        from repscope.distributed.executor import LocalExecutor, concat_results

        executor = executor or LocalExecutor()
        if self.plan is None:
            if not isinstance(executor, LocalExecutor):
                raise ConfigError(f"study step '{self.name}' runs in one process; remove its ray key")
            return resolve(self.fn)(stores, **dict(params))
        planned = resolve(self.plan)(stores, params)
        if hasattr(planned, "units"):  # a plan object that combines its own parts (e.g. similarity's ComparePlan)
            return executor.run(planned.units, planned.combine)
        parts = executor.map(planned)
        if self.combine is None:
            return concat_results(parts)
        return resolve(self.combine)(stores, params, parts)


@dataclass(frozen=True)
class AnalysisPlugin:
    """One analysis package as the spine sees it (see the module docstring)."""

    name: str
    order: int
    cli: Ref | None = None  # register(app: typer.Typer) -> None
    steps: tuple[StudyStep, ...] = ()
    report: Ref | None = None  # report_sections(frame, artifacts) -> (list[Section], set[str] handled analyses)
    demo: Ref | None = None  # run(ctx: DemoContext) -> None; records its Results in ctx.db
    findings: Ref | None = None  # findings(frame, artifacts) -> list[repscope.report.findings.Finding]
    title: str | None = None  # the family heading in the report navigation (default: the name capitalised)
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def family_title(self) -> str:
        """The plugin's heading in the report (`title`, else its name capitalised)."""
        return self.title or self.name.title()

    def register_cli(self, app: Any) -> None:
        """Add this plugin's commands to a Typer app."""
        if self.cli is not None:
            resolve(self.cli)(app)

    def report_sections(self, frame: Any, artifacts: list[dict[str, Any]]) -> tuple[list[Any], set[str]]:
        """This plugin's report sections and the analysis names they cover."""
        if self.report is None:
            return [], set()
        return resolve(self.report)(frame, artifacts)

    def report_findings(self, frame: Any, artifacts: list[dict[str, Any]]) -> list[Any]:
        """This plugin's lines of the report's findings overview (`Finding`s; none without a `findings` hook)."""
        if self.findings is None:
            return []
        return list(resolve(self.findings)(frame, artifacts))

    def run_demo(self, ctx: Any) -> None:
        """Run this plugin's demo step."""
        if self.demo is not None:
            resolve(self.demo)(ctx)


PLUGINS: list[AnalysisPlugin] = [
    AnalysisPlugin("stores", STORES, cli="repscope.extract_cli:register", title="Stores"),
    AnalysisPlugin(
        "probe", PROBES, cli="repscope.probe.cli:register",
        steps=(StudyStep("probe", None, "repscope.probe.study:ProbeParams", plan="repscope.probe.study:plan",
                         combine="repscope.probe.study:combine", command="probe"),
               StudyStep("sts", "repscope.probe.study:run_sts", "repscope.probe.study:StsParams", command="sts")),
        report="repscope.probe.report:report_sections", demo="repscope.probe.demo:run",
        findings="repscope.probe.findings:findings", title="Probes"),
    AnalysisPlugin(
        "similarity", SIMILARITY, cli="repscope.similarity.cli:register",
        steps=(StudyStep("compare", None, "repscope.similarity.study:CompareParams",
                         plan="repscope.similarity.study:plan",
                         command="compare"),),
        report="repscope.similarity.report:report_sections", demo="repscope.similarity.demo:run",
        findings="repscope.similarity.findings:findings", title="Similarity"),
    AnalysisPlugin(
        "geometry", GEOMETRY, cli="repscope.geometry.cli:register",
        steps=(StudyStep("geometry", None, "repscope.geometry.study:GeometryParams",
                         plan="repscope.geometry.study:plan", combine="repscope.geometry.study:combine",
                         command="geometry"),),
        report="repscope.geometry.report:report_sections", demo="repscope.geometry.demo:run",
        findings="repscope.geometry.findings:findings", title="Geometry"),
    AnalysisPlugin(
        "dictionary", DICTIONARIES, cli="repscope.dictionary.cli:register",
        steps=(StudyStep("sae", None, "repscope.dictionary.study:SaeParams", plan="repscope.dictionary.study:plan",
                         command="sae train"),
               StudyStep("quantize", "repscope.dictionary.study:run_quantize",
                         "repscope.dictionary.study:QuantizeParams", command="quantize")),
        report="repscope.dictionary.report:report_sections", demo="repscope.dictionary.demo:run",
        findings="repscope.dictionary.findings:findings", title="Dictionaries"),
    AnalysisPlugin(
        "compress", COMPRESSION, cli="repscope.compress.cli:register",
        steps=(StudyStep("truncate", None, "repscope.compress.study:TruncateParams",
                         plan="repscope.compress.study:plan_truncate",
                         combine="repscope.compress.study:combine_truncate", command="truncate"),
               StudyStep("adapter", "repscope.compress.study:run_adapter", "repscope.compress.study:AdapterParams",
                         command="adapter train", command_only=("out", "overwrite", "apply_to")),
               StudyStep("quantize_embeddings", None, "repscope.compress.study:QuantizeEmbeddingsParams",
                         plan="repscope.compress.study:plan_quantize_embeddings",
                         command="quantize-embeddings")),
        report="repscope.compress.report:report_sections", demo="repscope.compress.demo:run", title="Compression"),
    AnalysisPlugin(
        "compat", COMPRESSION + 5, cli="repscope.compat.cli:register",
        steps=(StudyStep("compat", "repscope.compat.study:run", "repscope.compat.study:CompatParams",
                         command="compat"),),
        report="repscope.compat.report:report_sections", demo="repscope.compat.demo:run", title="Compatibility"),
    AnalysisPlugin(
        "disentangle", DISENTANGLEMENT, cli="repscope.disentangle.cli:register",
        steps=(StudyStep("disentangle", None, "repscope.disentangle.study:DisentangleParams",
                         plan="repscope.disentangle.study:plan",
                         command="disentangle"),),
        report="repscope.disentangle.report:report_sections", demo="repscope.disentangle.demo:run",
        findings="repscope.disentangle.findings:findings", title="Disentanglement"),
    AnalysisPlugin(
        "learn", LEARNERS, cli="repscope.learn.cli:register",
        steps=(StudyStep("learn", None, "repscope.learn.study:LearnParams", plan="repscope.learn.study:plan",
                         combine="repscope.learn.study:combine"),),
        report="repscope.learn.report:report_sections", demo="repscope.learn.demo:run"),
]


ENTRY_POINT_GROUP = "repscope.plugins"
_ENTRY_POINTS: dict[str, Any] = {"loaded": False, "error": None}  # read once per process


def _entry_point_dist(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", None) or ep.value.partition(":")[0].split(".")[0])


def load_entry_points() -> None:
    """Register the plugins other packages advertise under the entry-point group `repscope.plugins`, once per process.

    Each entry point loads an `AnalysisPlugin` or a callable returning one. One that fails to load, returns
    something else, or clashes with a registered plugin or study step stops with a one-line ConfigError naming its
    distribution (raised again on every later call: the plugin list stays incomplete until it is fixed)."""
    if _ENTRY_POINTS["loaded"]:
        if _ENTRY_POINTS["error"] is not None:
            raise _ENTRY_POINTS["error"]
        return
    _ENTRY_POINTS["loaded"] = True  # first: register_plugin below lists the plugins again
    from importlib import metadata

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            plugin = obj() if callable(obj) and not isinstance(obj, AnalysisPlugin) else obj
            if not isinstance(plugin, AnalysisPlugin):
                raise ConfigError(f"it gave {type(plugin).__name__}, not an AnalysisPlugin")
            register_plugin(plugin)
        except Exception as err:  # any failure of third-party code becomes one line
            why = (str(err).strip().splitlines() or [type(err).__name__])[0]
            dist = _entry_point_dist(ep)
            _ENTRY_POINTS["error"] = ConfigError(
                f"repscope plugin '{ep.name}' of distribution '{dist}' ({ENTRY_POINT_GROUP} entry point "
                f"{ep.value}) could not be registered: {why}; fix or uninstall {dist}")
            raise _ENTRY_POINTS["error"] from None


def plugins() -> list[AnalysisPlugin]:
    """The registered plugins in pipeline order (stable for equal `order`), those advertised under the entry-point
    group `repscope.plugins` included (`load_entry_points`)."""
    load_entry_points()
    return sorted(PLUGINS, key=lambda p: p.order)


def register_plugin(plugin: AnalysisPlugin) -> AnalysisPlugin:
    """Add a plugin (third-party packages, tests); its name and step names must be new."""
    if any(p.name == plugin.name for p in PLUGINS):
        raise ConfigError(f"analysis plugin '{plugin.name}' is already registered; unregister it first")
    taken = set(study_steps())
    clash = [s.name for s in plugin.steps if s.name in taken]
    if clash:
        raise ConfigError(f"study step '{clash[0]}' of plugin '{plugin.name}' is already declared by another plugin")
    PLUGINS.append(plugin)
    return plugin


def unregister_plugin(name: str) -> AnalysisPlugin:
    """Remove a plugin by name and return it."""
    for i, p in enumerate(PLUGINS):
        if p.name == name:
            return PLUGINS.pop(i)
    raise ConfigError(f"unknown analysis plugin '{name}'; choose one of {', '.join(p.name for p in PLUGINS)}")


def study_steps() -> dict[str, StudyStep]:
    """Every study step by `run:` name, in pipeline order."""
    return {s.name: s for p in plugins() for s in p.steps}


__all__ = ["AnalysisPlugin", "StudyStep", "PLUGINS", "ENTRY_POINT_GROUP", "load_entry_points", "plugins",
           "register_plugin", "unregister_plugin", "study_steps", "resolve"]
