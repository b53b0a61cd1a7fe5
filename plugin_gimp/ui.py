"""The plug-in's windows: the parameter dialog and the progress window (status, preview, Cancel).

The dialog offers the server's models (free text when the server is down) and takes its ranges from the
server's limits. For tests (gimp-console cannot click), the JSON file named by ``UNDERPAINT_GIMP_TEST_HOOKS``
may say ``"dialog": "ok"``/``"cancel"`` (answer the dialog once it is shown, logging what it showed) and
``"cancel_after": N`` (press the progress window's Cancel after N previews). Main thread only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

from ._protocol import core  # noqa: E402
from .params import SAMPLERS, ArgSpec  # noqa: E402
from .trace import log  # noqa: E402

PREVIEW_SIZE = 256
MULTILINE = ("prompt", "negative-prompt")
TEST_HOOKS_ENV = "UNDERPAINT_GIMP_TEST_HOOKS"  # a JSON file: {"dialog": "ok"|"cancel", "cancel_after": N}
LIMITED = {"steps": "max_steps", "batch": "max_batch"}  # argument -> field of the server's welcome.limits
_initialized = False


def test_hooks() -> dict[str, Any]:
    """The test hooks in force now ({} normally: no file named, or none there)."""
    path = os.environ.get(TEST_HOOKS_ENV)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            hooks = json.load(handle)
    except (OSError, ValueError):
        return {}
    return hooks if isinstance(hooks, dict) else {}


def display_available() -> bool:
    """Whether windows can be shown (False in gimp-console batch runs without a display)."""
    result = Gtk.init_check(sys.argv)
    return bool(result[0] if isinstance(result, tuple) else result)


def init() -> None:
    """GimpUi.init once per plug-in process."""
    global _initialized
    if not _initialized:
        GimpUi.init("underpaint")
        _initialized = True


def _labelled_text(dialog: GimpUi.ProcedureDialog, spec: ArgSpec) -> str:
    """A multi-line text box under its own mnemonic label; returns the id of the box holding both."""
    view = dialog.get_widget(spec.name, Gtk.TextView.__gtype__)
    view.set_wrap_mode(Gtk.WrapMode.WORD_CHAR)
    view.set_size_request(360, 60)
    view.set_tooltip_text(spec.blurb)
    label = dialog.get_label(f"{spec.name}-label", spec.nick, False, True)
    label.set_xalign(0.0)
    label.set_mnemonic_widget(view)
    dialog.fill_box(f"{spec.name}-box", [f"{spec.name}-label", spec.name])
    return f"{spec.name}-box"


def _spin_adjustment(widget: Gtk.Widget) -> Gtk.Adjustment | None:
    spin = widget.get_spin_button() if hasattr(widget, "get_spin_button") else widget
    return spin.get_adjustment() if isinstance(spin, Gtk.SpinButton) else None


def _apply_limits(dialog: GimpUi.ProcedureDialog, config: Gimp.ProcedureConfig, names: list[str],
                  limits: Any) -> None:
    """The server's maxima become the spin buttons' upper bounds (values above them are lowered)."""
    for name, field in LIMITED.items():
        if name not in names:
            continue
        top = int(getattr(limits, field))
        if config.get_property(name) > top:
            config.set_property(name, top)
        adjustment = _spin_adjustment(dialog.get_widget(name, GObject.TYPE_NONE))
        if adjustment is not None:
            adjustment.set_upper(top)


class ModelChooser:
    """The server's models in a drop-down that still takes typed text (any id, or empty = default)."""

    def __init__(self, config: Gimp.ProcedureConfig, spec: ArgSpec, models: tuple, default: str | None) -> None:
        self.config = config
        self.combo = Gtk.ComboBoxText.new_with_entry()
        for model in models:  # the entry shows what is chosen: the id itself
            self.combo.append(model.id, model.id)
        self.entry = self.combo.get_child()
        self.entry.set_text(config.get_property(spec.name) or "")
        if models:
            self.entry.set_placeholder_text(f"Server default ({default})" if default else "Server default")
            self.combo.set_tooltip_text(spec.blurb)
        else:
            self.entry.set_placeholder_text("Server not reachable: type a model id")
            self.combo.set_tooltip_text("The server did not answer, so its models are unknown: type a model id "
                                        "or leave empty for its default.")
        self.combo.connect("changed", self._changed)
        label = Gtk.Label.new_with_mnemonic(spec.nick)
        label.set_mnemonic_widget(self.entry)
        self.box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        self.box.pack_start(label, False, False, 0)
        self.box.pack_start(self.combo, True, True, 0)
        self.models = [model.id for model in models]

    def _changed(self, combo: Gtk.ComboBoxText) -> None:
        self.config.set_property("model", self.entry.get_text().strip())

    def replace(self, widget: Gtk.Widget) -> None:
        """Put the chooser where the dialog placed the plain text field, which is hidden."""
        parent = widget.get_parent()
        position = parent.child_get_property(widget, "position")
        widget.set_no_show_all(True)
        widget.hide()
        parent.pack_start(self.box, False, False, 0)
        parent.reorder_child(self.box, position)
        self.box.show_all()


def build_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str,
                 specs: tuple[ArgSpec, ...], welcome: Any = None) -> GimpUi.ProcedureDialog:
    """The parameter dialog: labelled multi-line prompts, then every argument in ``specs`` order.

    ``welcome``: the server's welcome (models, limits), or None when it could not be reached.
    """
    init()
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    names = [spec.name for spec in specs]
    for spec in specs:
        if spec.kind == "double":  # sliders with steps that fit their small ranges
            scale = dialog.get_spin_scale(spec.name, 1.0)
            scale.set_increments(0.01 if spec.hi <= 1 else 0.5, 0.1 if spec.hi <= 1 else 1.0)
            scale.set_digits(2)
    if welcome is not None:
        _apply_limits(dialog, config, names, welcome.limits)
    dialog.samplers = _offer_samplers(procedure, config, welcome) if "sampler" in names else None
    layout = [_labelled_text(dialog, spec) if spec.name in MULTILINE else spec.name for spec in specs]
    if "token" in names:  # typed like a password
        dialog.get_widget("token", GimpUi.LabelEntry.__gtype__).get_entry().set_visibility(False)
    dialog.fill(layout)
    if "loras" in names and welcome is not None:  # say which LoRAs this server has
        offered = ", ".join(f"{lora.id} ({lora.family})" for lora in welcome.loras[:40]) or "none"
        entry = dialog.get_widget("loras", GimpUi.LabelEntry.__gtype__)
        entry.set_tooltip_text(f"LoRA ids, comma-separated, each with an optional :weight.\nOn this server: {offered}")
    if "model" in names:
        spec = next(spec for spec in specs if spec.name == "model")
        models = welcome.models if welcome is not None else ()
        chooser = ModelChooser(config, spec, tuple(models), welcome.defaults.model if welcome else None)
        chooser.replace(dialog.get_widget("model", GimpUi.LabelEntry.__gtype__))
        dialog.model_chooser = chooser
    return dialog


def _offer_samplers(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, welcome: Any) -> list[str]:
    """Grey out the samplers the server does not offer (all stay choosable when it cannot be reached);
    returns the ones on offer."""
    from .job import FEATURES

    offered = core.params.offer(welcome.features, FEATURES).samplers if welcome is not None else SAMPLERS
    choice = Gimp.param_spec_choice_get_choice(procedure.find_argument("sampler"))
    for nick in SAMPLERS:
        choice.set_sensitive(nick, nick in offered)
    if config.get_property("sampler") not in offered:
        config.set_property("sampler", "default")
    return list(offered)


def _walk(widget: Gtk.Widget):
    yield widget
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            yield from _walk(child)


def describe_dialog(dialog: GimpUi.ProcedureDialog, config: Gimp.ProcedureConfig,
                    specs: tuple[ArgSpec, ...]) -> dict[str, Any]:
    """What the painter sees: labels with their access keys and targets, values, models, ranges."""
    labels = []
    for widget in _walk(dialog):
        if isinstance(widget, Gtk.Label) and widget.is_visible():
            key = widget.get_mnemonic_keyval()
            target = widget.get_mnemonic_widget()
            labels.append({"text": widget.get_text(),
                           "key": Gdk.keyval_name(key).lower() if key != Gdk.KEY_VoidSymbol else None,
                           "target": type(target).__name__ if target is not None else None})
    ranges = {}
    for name in LIMITED:
        widget = dialog.get_widget(name, GObject.TYPE_NONE) if name in {s.name for s in specs} else None
        adjustment = _spin_adjustment(widget) if widget is not None else None
        if adjustment is not None:
            ranges[name] = adjustment.get_upper()
    chooser = getattr(dialog, "model_chooser", None)
    return {"labels": labels, "ranges": ranges, "models": chooser.models if chooser else None,
            "samplers": getattr(dialog, "samplers", None),
            "model_placeholder": chooser.entry.get_placeholder_text() if chooser else None,
            "values": {spec.name: config.get_property(spec.name) for spec in specs if spec.name != "token"}}


def ask(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str, specs: tuple[ArgSpec, ...],
        welcome: Any = None) -> bool:
    """Show the parameter dialog; True when the user pressed OK."""
    dialog = build_dialog(procedure, config, title, specs, welcome)
    auto = test_hooks().get("dialog")
    if auto in ("ok", "cancel"):
        def answer() -> bool:
            log("dialog_shown", **describe_dialog(dialog, config, specs))
            dialog.response(Gtk.ResponseType.OK if auto == "ok" else Gtk.ResponseType.CANCEL)
            return False

        GLib.timeout_add(200, answer)
    try:
        return bool(dialog.run())
    finally:
        dialog.destroy()


class ProgressWindow:
    """Status, a progress bar, the latest preview and a Cancel button that cancels the job cleanly."""

    def __init__(self, title: str, on_cancel: Callable[[], None]) -> None:
        init()
        self.on_cancel = on_cancel
        self.previews = 0
        self.dialog = GimpUi.Dialog(title=title, role="underpaint-progress")
        self.dialog.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        self.dialog.connect("response", self._cancel)
        self.dialog.connect("delete-event", self._cancel)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=12)
        self.image = Gtk.Image()
        self.image.set_size_request(PREVIEW_SIZE, PREVIEW_SIZE)
        self.label = Gtk.Label(label="Starting", xalign=0.0)
        self.bar = Gtk.ProgressBar()
        for widget in (self.image, self.label, self.bar):
            box.pack_start(widget, False, False, 0)
        self.dialog.get_content_area().pack_start(box, True, True, 0)
        GimpUi.window_set_transient(self.dialog)
        self.dialog.show_all()

    def _cancel(self, *_args: object) -> bool:
        self.label.set_text("Cancelling")
        self.on_cancel()
        return True  # keep the window until the run ends

    def status(self, text: str) -> None:
        self.label.set_text(text)

    def progress(self, fraction: float) -> None:
        self.bar.set_fraction(max(0.0, min(1.0, fraction)))

    def preview(self, rgb: bytes, has_alpha: bool, width: int, height: int) -> None:
        stride = width * (4 if has_alpha else 3)
        pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(rgb), GdkPixbuf.Colorspace.RGB, has_alpha, 8,
                                                 width, height, stride)
        scale = min(PREVIEW_SIZE / width, PREVIEW_SIZE / height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        self.image.set_from_pixbuf(pixbuf.scale_simple(*size, GdkPixbuf.InterpType.BILINEAR))
        self.previews += 1
        if self.previews == test_hooks().get("cancel_after"):
            GLib.idle_add(lambda: self.dialog.response(Gtk.ResponseType.CANCEL) and False)

    def close(self) -> None:
        self.dialog.destroy()
