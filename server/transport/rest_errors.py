"""One shape for every REST error: ``{"detail": {"code", "message", "field"}}``, also for what FastAPI and
Starlette answer themselves (a missing form field, an unknown route, an unexpected failure), and no Python
reprs in a message."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from underpaint.protocol import errors
from underpaint.protocol.vocabulary import INPUT_ROLES

_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")  # <_io.BytesIO object at 0x7f...>
_PLACES = ("body", "query", "header", "path", "cookie")


def without_reprs(text: str) -> str:
    """``text`` with every ``<... at 0x...>`` object repr cut out."""
    return " ".join(_REPR.sub("", text).split())


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"detail": {"code": code, "message": without_reprs(message), "field": field}}


def _validation(exc: RequestValidationError) -> JSONResponse:
    problem = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in problem.get("loc", ()) if p not in _PLACES) or None
    if problem.get("type") == "missing":
        code = errors.MISSING_INPUT if field in INPUT_ROLES else errors.MISSING_FIELD  # a file upload
        message = f"the request has no {field!r} form field" + (" (the file to work on)" if field == "image" else "")
    else:
        code, message = errors.BAD_VALUE, f"{field or 'the request'}: {problem.get('msg', 'not valid')}"
    return JSONResponse(error_body(code, message, field), status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, dict):  # already ours (rest._http_error)
            body = error_body(exc.detail.get("code", errors.INTERNAL), str(exc.detail.get("message", "")),
                              exc.detail.get("field"))
        else:
            body = error_body(errors.UNSUPPORTED, f"{request.method} {request.url.path}: {exc.detail} (the "
                              "endpoints are listed at /docs)")
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _exc: Exception) -> JSONResponse:  # uvicorn logs the traceback
        return JSONResponse(error_body(errors.INTERNAL, "internal error; the server log has the details"),
                            status_code=500)
