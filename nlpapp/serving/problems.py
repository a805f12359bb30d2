"""Errors as HTTP answers, in the OpenAI error shape
(``{"error": {"message", "type", "param", "code"}}``), which its clients parse."""

from __future__ import annotations

from typing import Any

from ..errors import InputError, NlpappError, UnknownNameError, UnsupportedModelError
from ..options import OptionError


class Problem(Exception):
    """An answer other than success, raised anywhere a request is handled."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def from_exception(exc: BaseException) -> Problem:
    """The answer for an exception from request handling or a model call: the user's mistake
    (bad input or option, a model that cannot do the task) is 400; any other failure is a
    500 naming the exception's type, so a client can tell a plugin's bug from a timeout."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, OptionError):
        return Problem(400, str(exc), param=f"options.{exc.option}", code="invalid_option")
    for kind, code in ((InputError, "invalid_input"), (UnsupportedModelError, "unsupported_model"),
                       (UnknownNameError, "unknown_name")):
        if isinstance(exc, kind):
            return Problem(400, str(exc), code=code)
    if isinstance(exc, NlpappError):  # a plugin's failure, say: PluginError's message names the plugin
        return Problem(500, str(exc), "server_error", code=_snake(type(exc).__name__))
    return Problem(500, f"{type(exc).__name__}: {exc}", "server_error", code="internal_error")


def _snake(name: str) -> str:
    """``PluginError`` -> ``plugin_error``."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
