"""Parameter constraints declared once and used by both front ends: a study param is a pydantic field of one of
these types, and the CLI option of the same parameter checks its value against the same type (`option_check`).

Importing this module is cheap (pydantic only), so CLI option declarations can use it at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AliasChoices, Field, TypeAdapter, ValidationError

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A finite number > 0 (learning rates, expansion factors, epochs as a float)."""

NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A finite number ≥ 0 (penalty coefficients)."""


class _SampleColumn:
    """The type of the `SAMPLE_COLUMN` marker."""

    def __repr__(self) -> str:
        return "SAMPLE_COLUMN"


SAMPLE_COLUMN = _SampleColumn()
"""Metadata marking a study-step param whose value (a name or a list of names) is a sample column of the step's
stores; `Annotated[str, SAMPLE_COLUMN]`. A study checks such values given in its file against each store's columns
(the dataset's, for a store not yet extracted) before it extracts anything."""


TARGET_KEYS = AliasChoices("target", "label")
"""The keys a study file may give a step's `target` field under (its `validation_alias`; the model sets
`populate_by_name`): `target`, the one name of the sample column a step predicts or scores against, and `label`,
its name in study files written before that vocabulary."""


def column_fields(model: Any) -> list[str]:
    """Names of the fields of a pydantic params model marked with `SAMPLE_COLUMN`."""
    return [name for name, f in model.model_fields.items() if any(m is SAMPLE_COLUMN for m in f.metadata)]


def field_keys(model: Any, name: str) -> list[str]:
    """The keys a params dict may give field `name` of a pydantic model under: the field name, then the string
    choices of its `validation_alias` (e.g. `target` and its old name `label`, `TARGET_KEYS`)."""
    alias = model.model_fields[name].validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias is not None else []
    return list(dict.fromkeys([name, *(c for c in choices if isinstance(c, str))]))


def option_check(annotation: Any) -> Callable[[Any], Any]:
    """A typer option callback refusing, while options are parsed, a value that `annotation` rejects: the usage
    error names the option, the rule and the value (`Invalid value for '--lr': Input should be greater than 0 …`)."""
    import typer

    adapter = TypeAdapter(annotation)

    def check(value: Any) -> Any:
        if value is None:
            return value
        try:
            adapter.validate_python(value)
        except ValidationError as err:
            raise typer.BadParameter(f"{err.errors()[0]['msg']} (got {value!r})") from None
        return value

    return check


def split_list(value: Any, what: str, example: str) -> list[str] | None:
    """Names from comma-separated text ('int8, binary') or a list; None stays None (the caller's default).

    An empty list or an empty entry ('8,,16', 'int8,') is refused with a one-line ConfigError naming `what`, so a
    typo never silently drops a value; `example` shows a valid value in the message."""
    from repscope.errors import ConfigError

    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else [value]
    names = [str(v).strip() for v in items]
    if not names or names == [""]:
        raise ConfigError(f"{what} {value!r} names no value; give at least one (e.g. {example}) or leave it out "
                          "for the default")
    if any(not n for n in names):
        raise ConfigError(f"{what} {value!r} has an empty entry; give comma-separated values with none left blank "
                          f"(e.g. {example})")
    return names
