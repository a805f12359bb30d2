"""``/v1/tasks``: every registered task (plugin tasks included) as a route of its own,
``POST /v1/tasks/{name}``, whose request and response schemas come from the task's
``Input``, ``Options`` and ``Output``. Inputs run through the same ``Predictor`` as
``nlpapp run``: the batch the model thread gathers from concurrent requests is sorted by
length and cut into ``--batch-size`` pieces as a file's inputs are."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import InputError
from ..options import OptionError
from ..runtime.adapters import with_saved_options
from ..runtime.engine import Predictor
from ..task import TaskKind
from .admission import estimate_tokens
from .problems import Problem
from .schemas import TaskSchemas, task_schemas
from .state import ServerState


def task_router(state: ServerState, tasks: list[TaskKind]) -> APIRouter:
    router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
    schemas = {task.name: task_schemas(task, state.config) for task in tasks}

    @router.get("", summary="Every task this server runs, with the served models that can run it")
    def list_tasks() -> dict[str, Any]:
        return {"object": "list", "data": [_describe(state, task, schemas[task.name]) for task in tasks]}

    for task in tasks:
        _add_task_routes(router, state, task, schemas[task.name])

    @router.get("/{name}", include_in_schema=False)
    @router.post("/{name}", include_in_schema=False)
    def unknown_task(name: str) -> None:
        known = [known_name for t in tasks for known_name in (t.name, *t.aliases)]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"the tasks are: {', '.join(known)}"
        raise Problem(404, f"unknown task {name!r}; {hint}", param="task", code="task_not_found")

    return router


def _describe(state: ServerState, task: TaskKind, schemas: TaskSchemas) -> dict[str, Any]:
    runs_on = [s.id for s in state.catalog.entries.values()
               if s.model is not None and s.model.head in task.heads
               and (s.task is None or state.catalog.runtime.registries.tasks.canonical(s.task) == task.name)]
    return {**task.describe(), "object": "task", "path": f"/v1/tasks/{task.name}", "streams": task.streams,
            "models": runs_on, "input_schema": schemas.input.model_json_schema(),
            "options_schema": schemas.options.model_json_schema(),
            "output_schema": schemas.output.model_json_schema()}


def _add_task_routes(router: APIRouter, state: ServerState, task: TaskKind, schemas: TaskSchemas) -> None:
    Request_ = schemas.request

    async def run_task(body: Request_, request: Request) -> Any:  # type: ignore[valid-type]
        return await _run(state, task, body, request)

    async def describe_task() -> dict[str, Any]:
        return _describe(state, task, schemas)

    run_task.__annotations__["body"] = Request_
    for name in (task.name, *task.aliases):  # an alias answers too, outside the OpenAPI document
        documented = name == task.name
        router.add_api_route(f"/{name}", run_task, methods=["POST"], response_model=schemas.response,
                             summary=task.description, name=f"run {name}", include_in_schema=documented)
        router.add_api_route(f"/{name}", describe_task, methods=["GET"], summary=f"Describe task {task.name}",
                             name=f"describe {name}", include_in_schema=documented)


async def _run(state: ServerState, task: TaskKind, body: Any, request: Request) -> JSONResponse:
    if not state.ready:
        state.admit(0)  # 503 while loading
    served = state.catalog.for_task(task, body.model, body.adapter)
    given = body.options.model_dump(exclude_unset=True) if body.options is not None else {}
    try:
        if served.folder is not None:  # the options it was trained with are the defaults, as for nlpapp run
            given = with_saved_options(str(served.folder), task, given)
        options = task.parse_options(given)
        cap = state.config.max_tokens
        if getattr(options, "max_new_tokens", 0) > cap:
            if "max_new_tokens" in given:
                raise OptionError("max_new_tokens", f"is {options.max_new_tokens}; this server allows at most {cap} "
                                                    "(--max-tokens)")
            options = task.parse_options({**given, "max_new_tokens": cap})  # the task's default, over the cap
    except OptionError as exc:
        raise Problem(422, str(exc), param=f"options.{exc.option}", code="invalid_option") from None
    new_tokens = getattr(options, "max_new_tokens", 0) or 0
    main = task.input_fields[0]
    items = []
    for n, given_input in enumerate(body.inputs):
        record = {main: given_input} if isinstance(given_input, str) else given_input.model_dump(exclude_none=True)
        items.append(_make_input(task, record, n))
    chars = sum(task.input_length(item) for item in items)
    one_pass = state.catalog.runtime.one_pass(served.model)
    batch_size = state.config.batch_size

    def runner(batch: list[Any]) -> list[Any]:
        model = state.catalog.activate(served)
        predictor = Predictor(task, model, options, batch_size, one_pass=one_pass)
        return [output for _, output in predictor.predict(batch)]

    outputs = await state.run(request, estimate_tokens(chars, new_tokens * len(items)),
                              ("task", task.name, served.id, options), items, runner)
    # a JSONResponse skips FastAPI's re-validation of the outputs (the task made them typed); the
    # route's response_model still documents them
    return JSONResponse({"task": task.name, "model": served.spec, "adapter": served.adapter,
                         "outputs": [dataclasses.asdict(output) for output in outputs]})


def _make_input(task: TaskKind, record: dict[str, Any], n: int) -> Any:
    try:
        return task.make_input(record, f"inputs[{n}]")
    except InputError as exc:
        raise Problem(422, str(exc), param=f"inputs[{n}]", code="invalid_input") from None
