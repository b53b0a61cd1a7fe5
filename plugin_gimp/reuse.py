"""Reuse Parameters: a result layer's recorded parameters fill the Underpaint dialog again.

The layer's ``underpaint-params`` parasite becomes the remembered dialog values of its procedure (image to
image or inpaint), with the seed that was actually used; interactively that dialog then opens, pre-filled,
on the selected layer. Main thread only.
"""

from __future__ import annotations

from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

from . import naming, params, settings  # noqa: E402
from .trace import log  # noqa: E402

NAME = "plug-in-underpaint-reuse"
LABEL = "_Reuse Parameters…"
TITLE = "Underpaint: Reuse Parameters"
BLURB = ("Fill the Underpaint dialog with the parameters of a layer Underpaint made (prompt, strength, steps, "
         "seed, model…), ready to run again.")


class NoParameters(ValueError):
    """The layer carries no (readable) Underpaint parameters; the message says what to do."""


def recorded_values(layer: Gimp.Layer) -> tuple[str, dict]:
    """(kind, argument values) recorded on ``layer``."""
    parasite = layer.get_parasite(naming.PARASITE_NAME)
    if parasite is None:
        raise NoParameters(f"The layer '{layer.get_name()}' has no Underpaint parameters: select a layer that "
                           "Underpaint made.")
    try:
        payload = naming.read_parasite_payload(bytes(parasite.get_data()))
    except ValueError as exc:
        raise NoParameters(f"The Underpaint parameters of '{layer.get_name()}' cannot be read: {exc}") from None
    record = payload.get("params")
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in params.KINDS:
        raise NoParameters(f"The Underpaint parameters of '{layer.get_name()}' name no known job kind.")
    values = params.values_from_record(kind, record)
    server = payload.get("server")
    if isinstance(server, str) and server:
        values.update(params.clean_values(kind, {"server-url": server}))
    return kind, values


def run(procedure_names: dict[str, str], run_mode: Gimp.RunMode, image: Gimp.Image, drawables: list) -> str | None:
    """Remember the layer's parameters (and open the dialog when interactive); an error sentence or None.

    ``procedure_names``: job kind -> the PDB name of its procedure.
    """
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        return "Select exactly one layer that Underpaint made."
    try:
        kind, values = recorded_values(drawables[0])
    except NoParameters as exc:
        return str(exc)
    settings.save_values(Path(Gimp.directory()), kind, values)
    log("parameters_reused", kind=kind, values=values)
    if run_mode != Gimp.RunMode.INTERACTIVE:
        return None
    procedure = Gimp.get_pdb().lookup_procedure(procedure_names[kind])
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", list(drawables))
    result = procedure.run(config)
    status = result.index(0)
    if status in (Gimp.PDBStatusType.SUCCESS, Gimp.PDBStatusType.CANCEL):
        return None
    return result.index(1).message if result.length() > 1 and result.index(1) else "The Underpaint run failed."
