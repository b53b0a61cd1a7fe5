"""REST endpoints for scripts and curl: info, models, and one-shot jobs (multipart in, PNG out)."""

from __future__ import annotations

import asyncio
import json
import uuid

from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import Response
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.jobs import JobRequest, check_features
from underpaint.protocol.messages import Cancelled, Error, Result, Submit
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.vocabulary import KINDS

from ..imaging.files import read_image
from .rest_errors import install_error_handlers, without_reprs
from .rest_result import ZIP_NAME, result_response
from .security import bearer_token, check_origin
from .service import Service

STATUS = {errors.BAD_TOKEN: 401, errors.FORBIDDEN_ORIGIN: 403, errors.UNKNOWN_MODEL: 404, errors.QUEUE_FULL: 429,
          errors.RATE_LIMITED: 429, errors.TOO_LARGE: 413, errors.OUT_OF_MEMORY: 503, errors.MODEL_LOAD_FAILED: 503,
          errors.INTERNAL: 500}


def _documented(*codes: int) -> dict:
    """OpenAPI entries for the error answers: ``{"detail": {"code", "message", "field"}}``."""
    what = {400: "bad input (the code says what: bad_json, bad_value, bad_payload, ...)", 401: "missing or wrong "
            "token (bad_token)", 403: "an Origin that is not allowed (forbidden_origin)", 404: "unknown model",
            413: "an upload or image larger than the server's limits (too_large)", 429: "queue_full, or too many "
            "wrong tokens from this address (rate_limited)", 503: "out of memory or the model failed to load"}
    schema = {"type": "object", "properties": {"detail": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string", "nullable": True}}}}}
    return {c: {"description": what[c], "content": {"application/json": {"schema": schema}}} for c in codes}


def _http_error(exc: ProtocolError) -> HTTPException:
    return HTTPException(STATUS.get(exc.code, 400), {"code": exc.code, "message": without_reprs(exc.message),
                                                     "field": exc.field})


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_files(kind: object, roles: tuple[str, ...]) -> None:
    """The uploads against the kind's row of ``vocabulary.KINDS``, naming the file that is missing or extra."""
    row = KINDS.get(kind) if isinstance(kind, str) else None
    if row is None:
        return  # Submit.from_dict names the bad kind
    for role in row.required:
        if role not in roles:
            raise ProtocolError(errors.MISSING_INPUT, f"{row.name} jobs need a {role} file", role)
    for role in roles:
        if role not in row.roles:
            raise ProtocolError(errors.UNEXPECTED_INPUT, f"{row.name} jobs take no {role} file (they take: "
                                f"{', '.join(row.roles)})", role)


def add_rest_routes(app: FastAPI, service: Service) -> None:
    config = service.config
    install_error_handlers(app)

    def guard(authorization: str | None, origin: str | None, address: str = "unknown") -> None:
        try:
            check_origin(config, origin)
            service.auth.check(config, address, bearer_token(authorization))
        except ProtocolError as exc:
            raise _http_error(exc) from None

    @app.get("/v1/info", responses=_documented(401, 403, 429))
    def info(request: Request, authorization: str | None = Header(None), origin: str | None = Header(None)) -> dict:
        guard(authorization, origin, _address(request))
        return service.welcome().to_dict()

    @app.get("/v1/models", responses=_documented(401, 403, 429))
    def models(request: Request, authorization: str | None = Header(None),
               origin: str | None = Header(None)) -> list[dict]:
        guard(authorization, origin, _address(request))
        return [m.to_dict() for m in service.welcome().models]

    @app.post("/v1/jobs", response_class=Response,
              responses={200: {"content": {"image/png": {}, "application/zip": {}},
                               "description": "the whole image with the result as a PNG; with batch > 1 a zip of "
                               f"one PNG per image ({ZIP_NAME.format(index='N')}, N = 0, 1, ...); the seeds in "
                               "X-Underpaint-Seeds"},
                         **_documented(400, 401, 403, 404, 413, 429, 503)})
    async def run_job(
        request: Request,
        image: UploadFile = File(..., description="the source image (PNG, JPEG, ...)"),
        mask: UploadFile | None = File(None, description="white = repaint; same size as the image"),
        params: str = Form("{}", description='submit fields as JSON, e.g. {"kind": "inpaint", "prompt": "a cat"}; '
                           "without a prompt the job runs with an empty one (fine for img2img and upscale)"),
        authorization: str | None = Header(None),
        origin: str | None = Header(None),
    ) -> Response:
        guard(authorization, origin, _address(request))  # UploadGuard checked these before the body was read
        job_id = f"rest-{uuid.uuid4().hex[:16]}"
        try:
            fields = json.loads(params)
            if not isinstance(fields, dict):
                raise ProtocolError(errors.BAD_MESSAGE, "params must be a JSON object", "params")
            tiled = sorted({"inputs", "result_tile"} & set(fields))
            if tiled:
                raise ProtocolError(errors.UNSUPPORTED, f"REST jobs send one file per input: leave out {tiled[0]!r} "
                                    "(inputs and tiles are for the websocket protocol)", tiled[0])
            uploads = {"image": image, "mask": mask}  # the files by role; a kind's row says which it takes
            roles = tuple(role for role, upload in uploads.items() if upload is not None)
            fields = {"kind": "inpaint" if mask is not None else "img2img", **fields}
            _check_files(fields["kind"], roles)
            fields = {**fields, "job": job_id,
                      "inputs": [{"role": role} for role in roles], "result_format": "rgba8",
                      "result_encoding": "raw", "preview": {"enabled": False}}
            submit = Submit.from_dict(fields, ignore=("type",))
            check_features(submit, service.features, service.features)
            src = read_image(await image.read(), "image", "RGBA", service.limits.max_pixels)
            image_frame = make_frame(job_id, "image", src.tobytes(), src.shape[1], src.shape[0], "rgba8")
            mask_frame = None
            if mask is not None:
                m = read_image(await mask.read(), "mask", "L", service.limits.max_pixels)
                mask_frame = make_frame(job_id, "mask", m.tobytes(), m.shape[1], m.shape[0], "gray8")
            job = JobRequest.of(submit, {"image": image_frame, "mask": mask_frame}, service.limits)
        except json.JSONDecodeError as exc:
            raise _http_error(ProtocolError(errors.BAD_JSON, f"params is not JSON: {exc}", "params")) from None
        except ValueError:  # after JSONDecodeError, its subclass: Python's limit on integer digits
            raise _http_error(ProtocolError(errors.BAD_JSON, "params holds a number with more digits than the "
                                            "server reads (at most 4300)", "params")) from None
        except RecursionError:
            raise _http_error(ProtocolError(errors.BAD_JSON, "params is nested too deeply", "params")) from None
        except ProtocolError as exc:
            raise _http_error(exc) from None

        loop = asyncio.get_running_loop()
        done: asyncio.Queue[object] = asyncio.Queue()
        frames: list[Frame] = []

        def sink(item: object) -> None:
            if isinstance(item, Frame):
                frames.append(item)
            elif isinstance(item, (Result, Error, Cancelled)):
                loop.call_soon_threadsafe(done.put_nowait, item)

        # REST callers from one address share a queue, so the per-client limit and fair turns apply to them too.
        client = f"rest:{_address(request)}"
        if service.jobs.queued_count(client) >= service.limits.max_queued_jobs:
            raise _http_error(ProtocolError(errors.QUEUE_FULL, f"at most {service.limits.max_queued_jobs} REST jobs "
                                            "may wait per client address", "job"))
        service.jobs.submit(client, job, sink)
        outcome: object = None
        try:
            outcome = await done.get()
        finally:
            if outcome is None:  # the request was abandoned: do not leave its job in the queue
                service.jobs.cancel(client, job_id)
        if isinstance(outcome, Error):
            raise _http_error(outcome.to_exception())
        if isinstance(outcome, Cancelled) or not frames:
            raise _http_error(ProtocolError(errors.INTERNAL, "the job ended without a result"))
        return result_response(src, frames, outcome.seeds)  # type: ignore[union-attr]
