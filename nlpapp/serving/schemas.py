"""Request and response models (pydantic), so FastAPI validates every body (422 naming the
field) and the OpenAPI document describes every route.

Each task's models are made from its own dataclasses: ``Input`` (a record, or a bare text
for its first field), ``Options`` (types, defaults, help and choices; a field's ``check``
runs when ``TaskOptions`` parses the value) and ``Output``. The OpenAI-compatible bodies
follow OpenAI's API reference for chat completions, completions, embeddings and models;
other fields a client may send are accepted, and those asking for what this server does not
offer (tools, logprobs, ...) are refused by the routes (``openai_routes.UNSUPPORTED``)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..task import TaskKind
from .config import ServeConfig

STRICT = ConfigDict(extra="forbid")


def _title(task: TaskKind, part: str) -> str:
    return "".join(word.capitalize() for word in task.name.replace("_", "-").split("-")) + part


def _dataclass_model(cls: type, name: str) -> type[BaseModel]:
    """A pydantic model with the fields of dataclass ``cls``: types, defaults, choices, help."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind, choices, help_text = hints[f.name], f.metadata.get("choices"), f.metadata.get("help")
        if choices:
            kind = Literal[tuple(choices)] if f.default is not None else Optional[Literal[tuple(choices)]]
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            spec = Field(default_factory=f.default_factory, description=help_text)  # type: ignore[misc]
        else:
            spec = Field(... if f.default is dataclasses.MISSING else f.default, description=help_text)
        fields[f.name] = (kind, spec)
    return create_model(name, __config__=STRICT, **fields)


@dataclasses.dataclass(frozen=True)
class TaskSchemas:
    request: type[BaseModel]
    response: type[BaseModel]
    input: type[BaseModel]
    options: type[BaseModel]
    output: type[BaseModel]


def task_schemas(task: TaskKind, config: ServeConfig) -> TaskSchemas:
    """The request/response models of ``POST /v1/tasks/{task.name}``."""
    inputs = _dataclass_model(task.Input, _title(task, "Input"))
    options = _dataclass_model(task.Options, _title(task, "Options"))
    output = _dataclass_model(task.Output, _title(task, "Output"))
    main = task.input_fields[0]
    request = create_model(
        _title(task, "Request"), __config__=STRICT,
        inputs=(list[Union[str, inputs]], Field(  # type: ignore[valid-type]
            ..., min_length=1, max_length=config.max_inputs,
            description=f"Records with the task's fields, or texts (its {main!r} field).")),
        model=(Optional[str], Field(None, description="A served model id (GET /v1/models); default: one that "
                                                      "can run the task, or the adapter's base.")),
        adapter=(Optional[str], Field(None, description="A served adapter's name.")),
        options=(Optional[options], Field(None, description="The task's options; an adapter's saved options "  # type: ignore[valid-type]
                                                            "are the defaults.")),
    )
    response = create_model(
        _title(task, "Response"),
        task=(str, ...), model=(str, ...), adapter=(Optional[str], None),
        outputs=(list[output], ...),  # type: ignore[valid-type]
    )
    return TaskSchemas(request, response, inputs, options, output)


# --- OpenAI-compatible bodies ---------------------------------------------------------------

class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: Union[str, list[TextPart]]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


def openai_models(config: ServeConfig) -> dict[str, type[BaseModel]]:
    """Request models whose caps come from ``config`` (``max_tokens``, ``n``, inputs)."""
    limits: dict[str, Any] = dict(
        model=(str, Field(..., description="A served model id (GET /v1/models).")),
        max_tokens=(Optional[int], Field(None, ge=1, le=config.max_tokens)),
        max_completion_tokens=(Optional[int], Field(None, ge=1, le=config.max_tokens)),
        temperature=(Optional[float], Field(None, ge=0, le=2)),
        top_p=(Optional[float], Field(None, gt=0, le=1)),
        n=(int, Field(1, ge=1, le=config.max_n)),
        stream=(bool, False),
        stream_options=(Optional[StreamOptions], None),
        stop=(Optional[Union[str, list[str]]], Field(None, description="Text at which to end; not part of the "
                                                                         "output.")),
        seed=(Optional[int], None),
        frequency_penalty=(Optional[float], Field(None, ge=-2, le=2, description="Only 0 (not offered).")),
        presence_penalty=(Optional[float], Field(None, ge=-2, le=2, description="Only 0 (not offered).")),
        user=(Optional[str], None),
        adapter=(Optional[str], Field(None, description="A served adapter's name (or name it in model as "
                                                        "BASE:ADAPTER).")),
    )
    # extra fields are kept (``model_extra``) so that ones asking for what is not offered can be refused
    chat = create_model("ChatCompletionRequest", __config__=ConfigDict(extra="allow"),
                        messages=(list[ChatMessage], Field(..., min_length=1)), **limits)
    completion = create_model("CompletionRequest", __config__=ConfigDict(extra="allow"),
                              prompt=(Union[str, list[str]], ...), **limits)
    embedding = create_model(
        "EmbeddingRequest", __config__=ConfigDict(extra="allow"),
        model=(str, ...), input=(Union[str, list[str]], ...),
        encoding_format=(Literal["float", "base64"], "float"),
        dimensions=(Optional[int], Field(None, description="Not supported: a request that gives it is refused.")),
        user=(Optional[str], None))
    return {"chat": chat, "completion": completion, "embedding": embedding}
