"""The one declared list of analysis plugins: the CLI, studies, the demo and the report all iterate `PLUGINS`.

A plugin declares its name, its place in the pipeline (`order`: stores → probes → similarity → geometry →
dictionaries → compression/compatibility → disentanglement → learners), how it adds CLI commands, its study steps
(each with a pydantic params model checked when the study file loads), its report sections and its demo step.
Everything is referenced lazily ("module:attr" strings or callables), so importing this module stays cheap.

Add a package: write `cli.py` (`register(app)`), `study.py` (step functions + params models), `report.py`
(`report_sections(frame, artifacts)`) and `demo.py` (`run(ctx)`), then add one `AnalysisPlugin` below (or call
`register_plugin` from a third-party package).
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
    """One `run:` name of a study file: `fn(stores, **params) -> Result`, params checked by `params_model`.

    `params_model` is a pydantic model with `extra="forbid"` (a Ref, resolved when a study is validated)."""

    name: str
    fn: Ref
    params_model: Ref

    def model(self) -> Any:
        """The resolved pydantic params model."""
        return resolve(self.params_model)

    def run(self, stores: list[Any], params: Any) -> Any:
        """Run the step on `stores` with validated `params` (a params-model instance); returns its `Result`."""
        return resolve(self.fn)(stores, **dict(params))


@dataclass(frozen=True)
class AnalysisPlugin:
    """One analysis package as the spine sees it (see the module docstring)."""

    name: str
    order: int
    cli: Ref | None = None  # register(app: typer.Typer) -> None
    steps: tuple[StudyStep, ...] = ()
    report: Ref | None = None  # report_sections(frame, artifacts) -> (list[Section], set[str] handled analyses)
    demo: Ref | None = None  # run(ctx: DemoContext) -> None; records its Results in ctx.db
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def register_cli(self, app: Any) -> None:
        """Add this plugin's commands to a Typer app."""
        if self.cli is not None:
            resolve(self.cli)(app)

    def report_sections(self, frame: Any, artifacts: list[dict[str, Any]]) -> tuple[list[Any], set[str]]:
        """This plugin's report sections and the analysis names they cover."""
        if self.report is None:
            return [], set()
        return resolve(self.report)(frame, artifacts)

    def run_demo(self, ctx: Any) -> None:
        """Run this plugin's demo step."""
        if self.demo is not None:
            resolve(self.demo)(ctx)


PLUGINS: list[AnalysisPlugin] = [
    AnalysisPlugin("stores", STORES, cli="repscope.extract_cli:register"),
    AnalysisPlugin(
        "probe", PROBES, cli="repscope.probe.cli:register",
        steps=(StudyStep("probe", "repscope.probe.study:run", "repscope.probe.study:ProbeParams"),
               StudyStep("sts", "repscope.probe.study:run_sts", "repscope.probe.study:StsParams")),
        report="repscope.probe.report:report_sections", demo="repscope.probe.demo:run"),
    AnalysisPlugin(
        "similarity", SIMILARITY, cli="repscope.similarity.cli:register",
        steps=(StudyStep("compare", "repscope.similarity.study:run", "repscope.similarity.study:CompareParams"),),
        report="repscope.similarity.report:report_sections", demo="repscope.similarity.demo:run"),
    AnalysisPlugin(
        "geometry", GEOMETRY, cli="repscope.geometry.cli:register",
        steps=(StudyStep("geometry", "repscope.geometry.study:run", "repscope.geometry.study:GeometryParams"),),
        report="repscope.geometry.report:report_sections", demo="repscope.geometry.demo:run"),
    AnalysisPlugin(
        "dictionary", DICTIONARIES, cli="repscope.dictionary.cli:register",
        steps=(StudyStep("sae", "repscope.dictionary.study:run", "repscope.dictionary.study:SaeParams"),
               StudyStep("quantize", "repscope.dictionary.study:run_quantize",
                         "repscope.dictionary.study:QuantizeParams")),
        report="repscope.dictionary.report:report_sections", demo="repscope.dictionary.demo:run"),
    AnalysisPlugin(
        "compress", COMPRESSION, cli="repscope.compress.cli:register",
        steps=(StudyStep("truncate", "repscope.compress.study:run_truncate", "repscope.compress.study:TruncateParams"),
               StudyStep("adapter", "repscope.compress.study:run_adapter", "repscope.compress.study:AdapterParams"),
               StudyStep("quantize_embeddings", "repscope.compress.study:run_quantize",
                         "repscope.compress.study:QuantizeEmbeddingsParams")),
        report="repscope.compress.report:report_sections", demo="repscope.compress.demo:run"),
    AnalysisPlugin(
        "compat", COMPRESSION + 5, cli="repscope.compat.cli:register",
        steps=(StudyStep("compat", "repscope.compat.study:run", "repscope.compat.study:CompatParams"),),
        report="repscope.compat.report:report_sections", demo="repscope.compat.demo:run"),
    AnalysisPlugin(
        "disentangle", DISENTANGLEMENT, cli="repscope.disentangle.cli:register",
        steps=(StudyStep("disentangle", "repscope.disentangle.study:run",
                         "repscope.disentangle.study:DisentangleParams"),),
        report="repscope.disentangle.report:report_sections", demo="repscope.disentangle.demo:run"),
    AnalysisPlugin(
        "learn", LEARNERS, cli="repscope.learn.cli:register",
        steps=(StudyStep("learn", "repscope.learn.study:run", "repscope.learn.study:LearnParams"),),
        report="repscope.learn.report:report_sections", demo="repscope.learn.demo:run"),
]


def plugins() -> list[AnalysisPlugin]:
    """The registered plugins in pipeline order (stable for equal `order`)."""
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


__all__ = ["AnalysisPlugin", "StudyStep", "PLUGINS", "plugins", "register_plugin", "unregister_plugin",
           "study_steps", "resolve"]
