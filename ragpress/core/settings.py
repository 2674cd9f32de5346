"""Settings read from a file are untrusted: a pipeline file that someone shared may name a stage and
its settings, nothing more. This module checks them before a stage is built from them:

- every setting must be a field of the stage and have its declared type (a file's ``top_k: '5'``
  is refused with the setting's name, not a ``TypeError`` deep in a method);
- a setting that names code to import, a host to send text to, an environment variable to read or
  a place to read and write data (fields declared with :func:`guarded`) keeps its default unless the caller allows it by name at
  load time (``Pipeline.load(path, allow={"base_url"})``) or sets it in Python.

See SECURITY.md for the whole trust model.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml

from ragpress.core.errors import UnknownSettingError

GUARDS = {
    "code": "names Python code to import and call",
    "host": "names a server that receives the retrieved text",
    "secret": "names an environment variable whose value is sent to a server",
    "path": "names a place (a folder, a bucket) where the stage reads and writes data",
}


def guarded(default: Any, guard: str, **field_options: Any) -> Any:
    """A dataclass field whose value a pipeline file may not set unless the caller allows it."""
    if guard not in GUARDS:
        raise ValueError(f"Unknown guard {guard!r}; use one of {sorted(GUARDS)}.")
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return dataclasses.field(metadata={"guard": guard}, **factory, **field_options)


# Other libraries' names for settings that ragpress spells otherwise (``top_k`` counts chunks everywhere).
OTHER_NAMES = {"top_n": "top_k", "target_token": "budget", "max_tokens": "budget"}


def check_settings(cls: type, settings: Mapping[str, Any], allow: Iterable[str] = ()) -> dict[str, Any]:
    """``settings`` for building ``cls`` from a file, checked: known names, declared types, guarded
    settings left at their defaults unless named in ``allow``. Raises ValueError naming the fix
    (:class:`UnknownSettingError` for a name the stage lacks)."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"The settings of {cls.__name__} must be a mapping of name to value, got {type(settings).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    allow = set(allow)
    for name, value in settings.items():
        if name not in fields:
            ours = OTHER_NAMES.get(name)
            hint = f" (ragpress's name for {name!r} is {ours!r})" if ours in fields else ""
            raise UnknownSettingError(f"{cls.__name__} has no setting {name!r}{hint}; its settings are {sorted(fields)}.")
        if not matches(value, hints[name]):
            raise ValueError(f"{cls.__name__} setting {name!r} must be {describe(hints[name])}, got {type(value).__name__} {value!r}.")
        field = fields[name]
        guard = field.metadata.get("guard")
        if guard and name not in allow and value != _default(field):
            raise ValueError(
                f"This pipeline file sets {cls.__name__}.{name} = {value!r}, which {GUARDS[guard]}. A shared file may not "
                f"choose that: set it in Python, or, if you trust this file, load it with allow={{{name!r}}}."
            )
    return dict(settings)


def matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (as YAML or JSON gives it) fits the type ``annotation``."""
    if annotation is Any:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return value in args
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (dict, Mapping) or annotation is dict:
        return isinstance(value, Mapping) and all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items()) if args else isinstance(value, Mapping)
    if origin in (tuple, list) or annotation in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return not args or all(matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args))
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def describe(annotation: Any) -> str:
    return str(annotation).replace("typing.", "") if typing.get_args(annotation) else getattr(annotation, "__name__", str(annotation))


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


class _NoAliases(yaml.SafeLoader):
    """YAML without aliases: ``*name`` repeats a node, and nested repeats grow a small file
    exponentially at load (an alias bomb); a pipeline file never needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "pipeline files may not use YAML aliases (*name); write the value out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def read_yaml(text: str) -> Any:
    """Plain data from untrusted YAML: safe types only (no Python objects), no aliases."""
    try:
        return yaml.load(text, Loader=_NoAliases)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ValueError(f"Not a valid pipeline file: {error}") from error


def read_json(path) -> Any:
    """The JSON in file ``path`` (a checkpoint's config, a saved index's settings), or ValueError naming the file."""
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a valid JSON file ({error}); it is damaged or not what ragpress wrote there.") from error
