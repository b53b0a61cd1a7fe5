"""The engine seam carries plain values only, so a later engine can sit in another process."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
from underpaint.protocol.errors import ALL_CODES, ProtocolError
from underpaint.server.engine import interface
from underpaint.server.engine.interface import (
    CancelToken,
    EngineError,
    GenerationRequest,
    JobCancelled,
    ModelSpec,
    PreviewPolicy,
    StepInfo,
)
from underpaint.server.jobs.cancel import CancelFlag


def test_requests_step_reports_and_specs_survive_pickling() -> None:
    image = np.arange(8 * 16 * 3, dtype=np.uint8).reshape(8, 16, 3)
    request = GenerationRequest(kind="inpaint", model="m", prompt="p", negative_prompt="", strength=0.5, steps=4,
                                guidance=5.0, seed=1, batch=1, sampler="euler", image=image,
                                mask=np.full((8, 16), 255, np.uint8), preview=PreviewPolicy(every_steps=2))
    again = pickle.loads(pickle.dumps(request))
    assert np.array_equal(again.image, image) and again.preview == request.preview
    step = pickle.loads(pickle.dumps(StepInfo(step=2, total=4, preview=image)))
    assert (step.step, step.total) == (2, 4) and np.array_equal(step.preview, image)
    spec = ModelSpec(id="m", name="M", family="sd1", inpaint=False, resolution=512, source="diffusers")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert not any("path" in name for name in ModelSpec.__dataclass_fields__)  # ids only, never a path


def test_a_model_spec_is_built_with_keywords_only() -> None:
    """Seven fields, three of them strings and two flags or numbers: a positional call could swap them."""
    with pytest.raises(TypeError):
        ModelSpec("m", "M", "sd1", False, 512, "diffusers")  # type: ignore[misc]


def test_the_interface_imports_no_transport_and_no_threads() -> None:
    tree = ast.parse(Path(interface.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"threading", "asyncio", "websockets", "fastapi", "uvicorn", "torch", "diffusers"}


def test_cancel_flag_is_a_cancel_token() -> None:
    flag = CancelFlag()
    assert isinstance(flag, CancelToken) and not flag.cancelled
    flag.raise_if_cancelled()
    flag.set()
    assert flag.cancelled
    with pytest.raises(JobCancelled):
        flag.raise_if_cancelled()


def test_engine_errors_are_protocol_errors_with_protocol_codes() -> None:
    error = EngineError("out_of_memory", "too big", "batch")
    assert isinstance(error, ProtocolError) and error.code in ALL_CODES
    assert (error.message, error.field) == ("too big", "batch")
