"""The plug-in's windows: the parameter dialog and the progress window that shows previews.

Previews live in this plug-in-owned window, never in the image: when GIMP's own progress Cancel kills
the plug-in, the window goes with the process and the image was never touched. Main thread only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, Gtk  # noqa: E402

from .params import ArgSpec  # noqa: E402

PREVIEW_SIZE = 256
MULTILINE = ("prompt", "negative-prompt")
_initialized = False


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


def build_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str,
                 specs: tuple[ArgSpec, ...]) -> GimpUi.ProcedureDialog:
    """The parameter dialog: multi-line prompts, then every argument in ``specs`` order."""
    init()
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    for name in MULTILINE:
        view = dialog.get_widget(name, Gtk.TextView.__gtype__)
        view.set_wrap_mode(Gtk.WrapMode.WORD_CHAR)
        view.set_size_request(360, 60)
    for spec in specs:
        if spec.kind == "double":  # sliders with steps that fit their small ranges
            scale = dialog.get_spin_scale(spec.name, 1.0)
            scale.set_increments(0.01 if spec.hi <= 1 else 0.5, 0.1 if spec.hi <= 1 else 1.0)
            scale.set_digits(2)
    names = [spec.name for spec in specs]
    if "token" in names:  # typed like a password
        dialog.get_widget("token", GimpUi.LabelEntry.__gtype__).get_entry().set_visibility(False)
    dialog.fill(names)
    return dialog


def ask(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str, specs: tuple[ArgSpec, ...]) -> bool:
    """Show the parameter dialog; True when the user pressed OK."""
    dialog = build_dialog(procedure, config, title, specs)
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

    def close(self) -> None:
        self.dialog.destroy()
