"""The OpenAI-compatible routes: ``/v1/chat/completions`` and ``/v1/completions`` (with
server-sent-event streaming), ``/v1/embeddings`` and ``/v1/models``, in the shapes of
OpenAI's API reference, so its clients work unchanged.

Omitted decoding settings take the text-generation task's defaults (greedy, its
repetition penalty), under an adapter's saved options; ``temperature`` above 0 samples.
``usage`` counts tokens with the model's tokenizer: the prompt's text (for a chat, the
messages' contents, not the template's markup) and the generated text. ``finish_reason``
is ``length`` when the output used all ``max_tokens``, else ``stop``."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from typing import Any, Sequence

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from ..model import Prompt
from ..options import GenerationOptions, OptionError
from ..types import GenerationParams
from .admission import estimate_tokens
from .catalog import Served
from .continuous import ContinuousBatching
from .problems import Problem, from_exception
from .schemas import openai_models
from .state import ServerState


def openai_router(state: ServerState) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai"])
    bodies = openai_models(state.config)
    Chat, Completion, Embedding = bodies["chat"], bodies["completion"], bodies["embedding"]

    @router.get("/models", summary="The served models and adapters")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [s.describe() for s in state.catalog.entries.values()]}

    @router.get("/models/{model_id:path}", summary="One served model or adapter")
    def get_model(model_id: str) -> dict[str, Any]:
        return state.catalog.find(model_id).describe()

    async def chat_completions(body: Chat, request: Request) -> Any:  # type: ignore[valid-type]
        refuse_unsupported(body)
        conversation = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                        for m in body.messages]
        if not any(m["content"].strip() for m in conversation):
            raise Problem(422, "the messages hold no text; give the user's message some content",
                          param="messages", code="invalid_input")
        return await _generate(state, request, body, [conversation], chat=True)

    async def completions(body: Completion, request: Request) -> Any:  # type: ignore[valid-type]
        refuse_unsupported(body)
        prompts = texts_of(body.prompt, "prompt", state.config.max_inputs)
        return await _generate(state, request, body, prompts, chat=False)

    async def embeddings(body: Embedding, request: Request) -> Any:  # type: ignore[valid-type]
        refuse_unsupported(body)
        return await _embed(state, request, body)

    for path, handler, body_type, summary in (
            ("/chat/completions", chat_completions, Chat, "Chat completion (OpenAI-compatible)"),
            ("/completions", completions, Completion, "Text completion (OpenAI-compatible)"),
            ("/embeddings", embeddings, Embedding, "Sentence embeddings (OpenAI-compatible)")):
        handler.__annotations__["body"] = body_type
        router.add_api_route(path, handler, methods=["POST"], summary=summary)
    return router


def texts_of(value: str | list[str], field: str, most: int) -> list[str]:
    """A text or list of texts as a list: ``Problem`` 422 naming ``field`` for none, more than
    ``most`` (``--max-inputs``), or an empty one."""
    texts = [value] if isinstance(value, str) else list(value)
    if not texts or len(texts) > most:
        raise Problem(422, f"{field} must hold 1 to {most} texts (--max-inputs); send more in further requests",
                      param=field, code="invalid_input")
    empty = [n for n, text in enumerate(texts) if not text.strip()]
    if empty:
        raise Problem(422, f"{field}[{empty[0]}] is empty; give each one some text", param=field,
                      code="invalid_input")
    return texts


# OpenAI request fields this server does not implement: given a value that asks for them, the
# request is refused (422) rather than answered as if they were honoured
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs", "logit_bias",
               "echo", "suffix", "audio", "modalities", "prediction", "dimensions")


# fields of OpenAI's requests that change nothing here and are accepted as they are
IGNORED = ("user", "metadata", "store", "service_tier", "parallel_tool_calls")


def refuse_unsupported(body: Any) -> None:
    """``Problem`` 422 naming the first field in ``UNSUPPORTED`` given a value that asks for
    something (not null, false or empty), or a ``response_format`` other than text, or ``best_of`` > 1;
    or a field OpenAI's API does not have (a misspelling: ``max_token``), as OpenAI refuses it."""
    extra = body.model_extra or {}
    unknown = sorted(set(extra) - set(UNSUPPORTED) - set(IGNORED) - {"response_format", "best_of"})
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], list(type(body).model_fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise Problem(422, f"unknown field {unknown[0]!r}{hint}", param=unknown[0], code="unknown_field")
    given = {**extra, **({"dimensions": body.dimensions} if hasattr(body, "dimensions") else {})}
    asked = [name for name in UNSUPPORTED if given.get(name) not in (None, False, [], {}, "")]
    fmt = given.get("response_format")
    if fmt not in (None, {"type": "text"}):
        asked.append("response_format")
    if given.get("best_of") not in (None, 1):
        asked.append("best_of")
    asked += [name for name in ("frequency_penalty", "presence_penalty") if getattr(body, name, None)]
    if asked:
        raise Problem(422, f"{asked[0]} is not supported by this server; leave it out", param=asked[0],
                      code="unsupported_field")


def generation_params(state: ServerState, served: Served, body: Any) -> GenerationParams:
    """Decoding settings: the text-generation task's defaults, an adapter's saved options over
    them, the request's fields over both."""
    tasks = state.catalog.runtime.registries.tasks
    options_type = tasks.get("text-generation").Options if "text-generation" in tasks else GenerationOptions
    decoding = {f.name for f in GenerationOptions.fields()}
    given = {"max_new_tokens": body.max_completion_tokens or body.max_tokens, "temperature": body.temperature,
             "top_p": body.top_p, "seed": body.seed}
    # with continuous batching, which cannot apply a repetition penalty, the default is none
    base = {"repetition_penalty": 1.0} if state.config.continuous_batching else {}
    values = {**base, **{k: v for k, v in served.options.items() if k in decoding},
              **{k: v for k, v in given.items() if v is not None}}
    try:
        params = options_type.parse(values).generation_params()
    except OptionError as exc:
        raise Problem(422, str(exc), param=exc.option) from None
    if params.max_new_tokens > state.config.max_tokens:  # a default over the server's cap (a request's is checked)
        params.max_new_tokens = state.config.max_tokens
    return params


class StopText:
    """Text up to the first of ``stops``, fed piece by piece: a tail that could be the start
    of a stop string is held back until the next piece shows whether it is."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.held += text
        found = [i for i in (self.held.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.held, self.stopped = self.held[:min(found)], "", True
            return out
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.held.endswith(s[:k])), default=0)
        out, self.held = self.held[:len(self.held) - hold], self.held[len(self.held) - hold:]
        return out

    def finish(self) -> str:
        out, self.held = ("" if self.stopped else self.held), ""
        return out


def _prompt_text(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


async def _generate(state: ServerState, request: Request, body: Any, prompts: list[Prompt], chat: bool) -> Any:
    if not state.ready:
        state.admit(0)  # 503 while loading
    served = state.catalog.find(body.model, body.adapter)
    params = generation_params(state, served, body)
    rows = [prompt for prompt in prompts for _ in range(body.n)]  # OpenAI's order: each prompt's n choices
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    tokens = estimate_tokens(sum(len(_prompt_text(p)) for p in prompts), params.max_new_tokens * len(rows))
    # adapters of one base share a batch where the model mixes them (LoRA: peft's adapter_names)
    mixed = served.model.mixes_adapters
    key = ("generate", id(served.model) if mixed else served.id, chat, repr(params))

    def runner(items: list[tuple[Prompt, Any, str | None]]) -> list[tuple[str, int, int]]:
        model = served.model if mixed else state.catalog.activate(served)
        streams = [callback for _, callback, _ in items]
        texts = model.generate_each([p for p, _, _ in items], params, chat=chat,
                                    streams=streams if any(streams) else None,
                                    adapters=[adapter for _, _, adapter in items] if mixed else None)
        prompt_tokens = model.count_tokens([_prompt_text(p) for p, _, _ in items])
        return list(zip(texts, prompt_tokens, model.count_tokens(texts)))

    reply = _Reply(chat, served, params, body.n, stops, state)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    engine = state.continuous.get(id(served.model))
    if engine is not None and engine.takes(params, served.adapter_key):
        return await _continuous(state, request, tokens, rows, chat, params, reply, engine, body.stream, include_usage)
    if not body.stream:
        results = await state.run(request, tokens, key, [(p, None, served.adapter_key) for p in rows], runner)
        return reply.whole(results)
    ticket = state.admit(tokens)  # before the response starts: a full server answers 429, not a failing stream
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()

    def callback(index: int) -> Any:
        return lambda text: loop.call_soon_threadsafe(pieces.put_nowait, (index, text))

    try:
        future = state.batcher.submit(key, [(p, callback(i), served.adapter_key) for i, p in enumerate(rows)], runner)
    except BaseException:
        state.release(ticket)
        raise
    future.add_done_callback(lambda _: pieces.put_nowait(None))
    return _stream(state, ticket, future, pieces, reply, include_usage, future.job.cancelled.set,  # type: ignore
                   len(rows))


async def _continuous(state: ServerState, request: Request, tokens: int, rows: list[Prompt], chat: bool,
                      params: GenerationParams, reply: "_Reply", engine: ContinuousBatching, stream: bool,
                      include_usage: bool) -> Any:
    """The rows through continuous batching: each joins the running batch at its next step."""
    ticket = state.admit(tokens)
    try:
        ids = [engine.prompt_ids(p, chat, params.max_new_tokens) for p in rows]
        prompt_tokens = [len(engine.tokenizer(_prompt_text(p), add_special_tokens=False)["input_ids"]) for p in rows]
    except BaseException:
        state.release(ticket)
        raise
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()
    results: list[tuple[str, int, int] | None] = [None] * len(rows)
    done = loop.create_future()
    sent = [0] * len(rows)

    def on_text(index: int) -> Any:
        def update(text: str, produced: int, finished: bool) -> None:
            if stream and len(text) > sent[index]:
                pieces.put_nowait((index, text[sent[index]:]))  # only what is new
                sent[index] = len(text)
            if finished:
                results[index] = (text, prompt_tokens[index], produced)
                if all(r is not None for r in results) and not done.done():
                    done.set_result(results)
        return update

    request_ids = [engine.submit(row_ids, params.max_new_tokens, on_text(i), stream) for i, row_ids in enumerate(ids)]

    def abandon() -> None:
        for request_id in request_ids:
            engine.cancel(request_id)

    if stream:
        done.add_done_callback(lambda _: pieces.put_nowait(None))
        return _stream(state, ticket, done, pieces, reply, include_usage, abandon, len(rows))
    try:
        return reply.whole(await state.wait(request, done, abandon))
    finally:
        state.release(ticket)


class _Reply:
    """The response bodies of one generation request, whole or as stream chunks."""

    def __init__(self, chat: bool, served: Served, params: GenerationParams, n: int, stops: list[str],
                 state: ServerState):
        self.chat, self.served, self.params, self.n, self.stops, self.state = chat, served, params, n, stops, state
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"

    def finish_reason(self, produced: int, stopped: bool) -> str:
        return "stop" if stopped or produced < self.params.max_new_tokens else "length"

    def usage(self, results: list[tuple[str, int, int]]) -> dict[str, int]:
        prompt = sum(r[1] for r in results[::self.n])  # each prompt once, however many choices
        completion = sum(r[2] for r in results)
        self.state.telemetry.prompt_tokens.inc(prompt)
        self.state.telemetry.generated_tokens.inc(completion)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def envelope(self, choices: list[dict[str, Any]], chunk: bool = False) -> dict[str, Any]:
        kind = self.object + (".chunk" if chunk and self.chat else "")
        return {"id": self.id, "object": kind, "created": self.created, "model": self.served.id,
                "system_fingerprint": None, "choices": choices}

    def choice(self, index: int, text: str | None, finish: str | None, chunk: bool = False,
               role: bool = False) -> dict[str, Any]:
        if not self.chat:
            return {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}
        content: dict[str, Any] = {"role": "assistant"} if role else {}
        if text is not None:
            content["content"] = text
        return {"index": index, ("delta" if chunk else "message"): content, "finish_reason": finish,
                "logprobs": None}

    def whole(self, results: list[tuple[str, int, int]]) -> dict[str, Any]:
        choices = []
        for index, (text, _, produced) in enumerate(results):
            stop = StopText(self.stops)
            cut = stop.feed(text) + stop.finish()
            choices.append(self.choice(index, cut, self.finish_reason(produced, stop.stopped), role=True))
        return {**self.envelope(choices), "usage": self.usage(results)}

    def chunk(self, index: int, text: str | None, finish: str | None = None, role: bool = False) -> str:
        return json.dumps(self.envelope([self.choice(index, text, finish, chunk=True, role=role)], chunk=True))


def _stream(state: ServerState, ticket: Any, future: asyncio.Future, pieces: asyncio.Queue, reply: "_Reply",
            include_usage: bool, abandon: Any, rows: int) -> EventSourceResponse:
    """A server-sent-event stream of the ``rows`` choices' text as ``pieces`` receives it
    (``(row, text)``, then ``None`` once ``future`` holds the results), then ``[DONE]``. It
    releases ``ticket`` at its end, and calls ``abandon()`` if it ends (client gone,
    deadline) before the work did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.config.request_timeout_s

    async def events() -> Any:
        stops = [StopText(reply.stops) for _ in range(rows)]
        try:
            if reply.chat:
                for index in range(rows):
                    yield {"data": reply.chunk(index, "", role=True)}
            while (item := await asyncio.wait_for(pieces.get(), max(0.0, deadline - loop.time()))) is not None:
                index, text = item
                if out := stops[index].feed(text):
                    yield {"data": reply.chunk(index, out)}
            results = future.result()
            for index, (_, _, produced) in enumerate(results):
                if tail := stops[index].finish():
                    yield {"data": reply.chunk(index, tail)}
                yield {"data": reply.chunk(index, None if reply.chat else "",
                                           reply.finish_reason(produced, stops[index].stopped))}
            usage = reply.usage(results)
            if include_usage:
                yield {"data": json.dumps({**reply.envelope([], chunk=True), "usage": usage})}
            yield {"data": "[DONE]"}
        except asyncio.TimeoutError:
            yield {"data": json.dumps(Problem(504, "no answer within --request-timeout", "timeout_error",
                                              code="deadline_exceeded").body())}
        except Exception as exc:  # noqa: BLE001 - the stream has begun: the error is its last event
            yield {"data": json.dumps(from_exception(exc).body())}
        finally:
            if not future.done():
                abandon()
            state.release(ticket)

    # on SIGTERM sse-starlette would end every stream at once; the grace period lets each finish
    return EventSourceResponse(events(), sep="\n", shutdown_grace_period=state.config.drain_timeout_s)


async def _embed(state: ServerState, request: Request, body: Any) -> dict[str, Any]:
    if not state.ready:
        state.admit(0)
    served = state.catalog.find(body.model)
    texts = texts_of(body.input, "input", state.config.max_inputs)

    def runner(items: list[str]) -> list[tuple[list[float], int]]:
        model = state.catalog.activate(served)
        return list(zip(model.embed(items), model.count_tokens(items)))

    results = await state.run(request, estimate_tokens(sum(map(len, texts))), ("embed", served.id), texts, runner)
    data = []
    for index, (vector, _) in enumerate(results):
        value: Any = vector if body.encoding_format == "float" else base64.b64encode(
            struct.pack(f"<{len(vector)}f", *vector)).decode()  # float32, little-endian, as OpenAI sends
        data.append({"object": "embedding", "index": index, "embedding": value})
    used = sum(r[1] for r in results)
    return {"object": "list", "data": data, "model": served.id, "usage": {"prompt_tokens": used, "total_tokens": used}}
