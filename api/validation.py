"""422 answers for malformed requests that can always be written as JSON.

FastAPI's own handler echoes each error's ``input`` and ``ctx``. Python's JSON parser takes
``NaN`` and ``Infinity`` in a body, and a string may hold a lone surrogate (``"\\ud800"``);
neither can be written back as strict JSON or UTF-8, so the echo itself failed and a
malformed body got a 500. Here every value of the error list is made encodable first: a
non-finite number becomes its text (``"NaN"``), an unencodable string is escaped, any other
object becomes its ``repr``. The answer keeps FastAPI's shape, ``{"detail": [{"type", "loc",
"msg", "input", "ctx"}]}``, so clients read one format.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def encodable(value: object) -> object:
    """``value`` with everything strict JSON (RFC 8259, UTF-8) cannot hold replaced by text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {str(encodable(k)): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encodable(v) for v in value]
    return repr(value)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": encodable(list(exc.errors()))})


def install(app: FastAPI) -> None:
    """Answer every request the route's types refuse with a 422 that always encodes."""
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]  # Starlette types handlers for Exception
