"""The Python API reference (docs/api.md), generated from the docstrings of every name in
``nlpapp.__all__``: a test fails when the page is stale, as for the CLI reference.

    python -m nlpapp.apidoc > docs/api.md          # regenerate
    python -m nlpapp.apidoc --check docs/api.md    # exit 1 if it is stale
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

# the order of the page: a user's names first, then a plugin author's
SECTIONS = {
    "The runtime and its verbs": ["Runtime"],
    "Configs and results": ["RunFileConfig", "RunFileResult", "TrainConfig", "TrainResult", "EvalConfig",
                            "EvalResult", "CompareConfig", "CompareResult", "SystemScores", "Score", "MergeResult",
                            "AdapterInfo", "LoadOptions"],
    "Errors": ["NlpappError", "InputError", "ModelLoadError", "OptionError", "UnknownNameError",
               "UnsupportedModelError"],
    "Task kinds and their stages": ["TaskKind", "TextToTextTask", "ClassificationTask", "TokenTaggingTask",
                                    "SpanExtractionTask", "Prepared", "Entity", "entities", "TrainingContext",
                                    "TrainingRecipe"],
    "Task options": ["TaskOptions", "GenerationOptions", "generation_options", "option", "TaskOption"],
    "Heads and models": ["ModelHead", "Head", "ModelFamily", "IGNORE", "Model", "HFModel", "GenerationParams",
                         "tokenizer_settings", "Span", "features"],
    "Registrations": ["hookimpl", "HOOK_API_VERSION", "ModelPreset", "DatasetSpec", "packaged_jsonl", "MetricSpec",
                      "MetricResult", "TaskFolder", "LoraPreset", "AdapterPreset", "BackendSpec",
                      "stop_requested"],
    "Helpers": ["cache_dir", "atomic_file", "warn", "__version__"],
}
HEADER = """# Python API reference

Generated from the docstrings of every name in `nlpapp.__all__` by `python -m nlpapp.apidoc`;
a test fails when this page is stale. How the pieces fit: [the library](library.md) for
users, [the plugin tutorial](plugins.md) and [hooks](hooks.md) for plugin authors.
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if getattr(obj, "__doc__", None) else ""


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _fields(cls: type) -> list[str]:
    """A dataclass's fields: name, default and help (from the field metadata)."""
    lines = []
    for f in dataclasses.fields(cls):
        default = "" if f.default is dataclasses.MISSING else f" = {f.default!r}"
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f" = {f.default_factory()!r}"  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        lines.append(f"- `{f.name}{default}`" + (f": {help_text}" if help_text else ""))
    return lines


ATTRIBUTE = re.compile(r"^    (\w+): ([^=#]+?)(?: = ([^#]+?))?\s*(?:# (.*))?$")


def _attributes(cls: type) -> list[str]:
    """Annotated class attributes as the class's source declares them, with their comments."""
    try:
        source = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return []
    lines = []
    for line in source:
        match = ATTRIBUTE.match(line)
        if match and not match.group(1).startswith("_"):
            name, kind, default, comment = match.groups()
            shown = f"{name}: {kind.strip()}" + (f" = {default.strip()}" if default else "")
            lines.append(f"- `{shown}`" + (f": {comment}" if comment else ""))
    return lines


def _methods(cls: type) -> list[str]:
    """Public methods and properties a class defines itself, each with its first doc line."""
    lines = []
    for name, member in cls.__dict__.items():
        if name.startswith("_"):
            continue
        target = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        if isinstance(member, property):
            first = _doc(member.fget).split("\n\n")[0].replace("\n", " ")
            lines.append(f"- `{name}` (property)" + (f": {first}" if first else ""))
        elif inspect.isfunction(target):
            first = _doc(target).split("\n\n")[0].replace("\n", " ")
            lines.append(f"- `{name}{_signature(target)}`" + (f": {first}" if first else ""))
    return lines


def _section(name: str, obj: Any) -> str:
    if inspect.ismodule(obj):
        lines = [f"### `{name}` (module)", "", _doc(obj)]
        lines += [f"- `{n}{_signature(f)}`: {_doc(f).splitlines()[0] if _doc(f) else ''}"
                  for n, f in vars(obj).items() if inspect.isfunction(f) and f.__module__ == obj.__name__
                  and not n.startswith("_")]
    elif inspect.isclass(obj):
        lines = [f"### `{name}`", "", _doc(obj)]
        if dataclasses.is_dataclass(obj) and dataclasses.fields(obj):
            lines += ["", "Fields:", "", *_fields(obj)]
        elif attributes := _attributes(obj):
            lines += ["", "Attributes:", "", *attributes]
        methods = _methods(obj)
        if methods:
            lines += ["", "Methods:", "", *methods]
    elif callable(obj):
        lines = [f"### `{name}{_signature(obj)}`", "", _doc(obj)]
    else:
        lines = [f"### `{name}` = `{obj!r}`"]
    return "\n".join(line.rstrip() for line in lines).strip() + "\n"


def render() -> str:
    import nlpapp

    listed = [n for names in SECTIONS.values() for n in names]
    missing = sorted(set(nlpapp.__all__) - set(listed))
    if missing:
        raise SystemExit(f"nlpapp.apidoc: put these names of nlpapp.__all__ in a section: {', '.join(missing)}")
    parts = [HEADER]
    for title, names in SECTIONS.items():
        parts.append(f"## {title}\n")
        parts += [_section(name, getattr(nlpapp, name)) for name in names]
    return "\n".join(parts)


def print_or_check(text: str, argv: list[str], module: str) -> int:
    """Print a generated page, or with ``--check FILE`` exit 1 when FILE differs from it."""
    if argv[:1] == ["--check"]:
        current = Path(argv[1]).read_text() if len(argv) > 1 and Path(argv[1]).is_file() else ""
        if current != text:
            print(f"{argv[1]} is stale; regenerate it: python -m {module} > {argv[1]}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(print_or_check(render(), sys.argv[1:], "nlpapp.apidoc"))
