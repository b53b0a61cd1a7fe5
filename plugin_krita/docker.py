"""The "Underpaint" docker: prompt and parameters, Generate/Cancel, progress, status, settings.

Widgets carry object names (``underpaint_*``) so tests and stylesheets can find them.
"""

from __future__ import annotations

from typing import Any

from krita import DockWidget, Krita

from . import qt
from .canvas_panel import CanvasPanel, source_area
from .controller import Controller, Status
from .live import LiveControls
from .params import MAX_SEED, GenerationParams, ParamsError
from .proto import core, vocabulary
from .settings import Settings, SettingsError

MODES = (("Auto (inpaint with a selection)", "auto"), *((k.label, k.name) for k in vocabulary.KINDS.values()))
SOURCES = (("Active layer", "layer"), ("Visible image", "visible"))
# the pixels' encoding on the wire (``core.transfer``): auto = raw on this machine, compressed to a remote server
CANVAS_SYNC_MS = 200  # after a canvas change, before the docker reads the (new) active document
TRANSFER_CHOICES = (("auto", "Auto (compress for a remote server)"), ("raw", "Raw (fastest on a LAN)"),
                    ("compressed", "Compressed (PNG)"))


def _named(widget: qt.QWidget, name: str) -> qt.QWidget:
    widget.setObjectName(f"underpaint_{name}")
    return widget


def _scrolled(content: qt.QWidget, name: str) -> qt.QWidget:
    """``content`` in a frameless vertical scroll area: the docker fits small screens."""
    area = _named(qt.QScrollArea(), name)
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.setFrameShape(qt.NO_FRAME)
    area.setHorizontalScrollBarPolicy(qt.SCROLL_OFF)
    area.setVerticalScrollBarPolicy(qt.SCROLL_AS_NEEDED)
    return area


def _show(label: qt.QLabel, text: str, error: bool) -> None:
    label.setText(text)
    label.setStyleSheet("color: #d04040;" if error else "")


def _bounds(r: vocabulary.Range) -> tuple[float, float, float]:
    return r.lo, r.hi, r.default


def _spin(name: str, lo: float, hi: float, value: float, decimals: int | None = None) -> qt.QWidget:
    box = qt.QDoubleSpinBox() if decimals is not None else qt.QSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
        box.setSingleStep(0.05 if hi <= 1 else 0.5)
    box.setRange(lo, hi)
    box.setValue(value)
    return _named(box, name)


class UnderpaintDocker(DockWidget):
    """One per main window; all of them share the extension's controller."""

    extension: Any = None  # the UnderpaintExtension, set before the docker factory is registered

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Underpaint")
        self.extension = UnderpaintDocker.extension
        self.controller: Controller = self.extension.controller
        self.extension.dockers.append(self)
        tabs = qt.QTabWidget()
        tabs.addTab(self._build_generate(), "Generate")
        tabs.addTab(self._build_settings(), "Settings")
        self.setWidget(tabs)
        self.controller.listeners.append(self.on_status)
        self.load_settings(self.controller.settings)
        self.set_params(self.extension.initial_params())
        self.on_status(self.controller.status())

    # ---------------------------------------------------------------- layout
    def _build_generate(self) -> qt.QWidget:
        """Connection line on top, the parameters in a scroll area, Generate/Cancel with progress and status
        below it: the buttons and every message stay in view however small the docker gets."""
        page = qt.QWidget()
        col = qt.QVBoxLayout(page)
        col.setContentsMargins(0, 0, 0, 0)
        self.connection = _named(qt.QLabel("Not connected"), "connection")
        self.connection.setWordWrap(True)
        connect = _named(qt.QToolButton(), "connect")
        connect.setText("Connect")
        connect.clicked.connect(self.reconnect)
        row = qt.QHBoxLayout()
        row.addWidget(self.connection, 1)
        row.addWidget(connect)
        col.addLayout(row)
        form_page = qt.QWidget()
        form = qt.QFormLayout(form_page)
        self.model = _named(qt.QComboBox(), "model")
        self.model.addItem("Server default", None)
        self.sampler = _named(qt.QComboBox(), "sampler")
        self.sampler.setToolTip("How the model steps through the noise; 'default' lets the model decide")
        self.sampler.addItem("default", "default")
        self.mode = _named(qt.QComboBox(), "mode")
        for text, value in MODES:
            self.mode.addItem(text, value)
        self.source = _named(qt.QComboBox(), "source")
        for text, value in SOURCES:
            self.source.addItem(text, value)
        self.prompt = _named(qt.QPlainTextEdit(), "prompt")
        self.prompt.setPlaceholderText("Describe what to paint")
        self.prompt.setMaximumHeight(80)
        self.negative = _named(qt.QPlainTextEdit(), "negative")
        self.negative.setPlaceholderText("What to avoid (optional)")
        self.negative.setMaximumHeight(50)
        self.loras = _named(qt.QLineEdit(), "loras")
        self.loras.setPlaceholderText("LoRA ids, e.g. styles/ink:0.6 (optional)")
        self.strength = _spin("strength", *_bounds(vocabulary.STRENGTH), 2)
        self.steps = _spin("steps", *_bounds(vocabulary.STEPS))
        self.cfg = _spin("cfg", *_bounds(vocabulary.GUIDANCE), 1)
        self.batch = _spin("batch", *_bounds(vocabulary.BATCH))
        self.seed_random = _named(qt.QCheckBox("Random"), "seed_random")
        self.seed_random.setChecked(True)
        self.seed = _named(qt.QLineEdit("0"), "seed")
        self.seed.setEnabled(False)
        self.seed_random.toggled.connect(lambda on: self.seed.setEnabled(not on))
        last = _named(qt.QToolButton(), "last_seed")
        last.setText("Last")
        last.setToolTip("Reuse the seed of the last result")
        last.clicked.connect(self.reuse_last_seed)
        seed_row = qt.QHBoxLayout()
        for widget in (self.seed_random, self.seed, last):
            seed_row.addWidget(widget)
        for label, widget in (("Prompt", self.prompt), ("Negative", self.negative), ("Model", self.model),
                              ("LoRAs", self.loras), ("Sampler", self.sampler), ("Mode", self.mode),
                              ("Source", self.source),
                              ("Strength", self.strength), ("Steps", self.steps), ("CFG", self.cfg),
                              ("Images", self.batch)):
            form.addRow(label, widget)
        form.addRow("Seed", seed_row)
        self.canvas = CanvasPanel()
        self.canvas.add_to(form)
        for signal in (self.mode.currentIndexChanged, self.source.currentIndexChanged,
                       self.model.currentIndexChanged, self.strength.valueChanged):
            signal.connect(lambda *_: self._sync_canvas())
        col.addWidget(_scrolled(form_page, "generate_scroll"), 1)
        buttons = qt.QHBoxLayout()
        self.generate_button = _named(qt.QPushButton("Generate"), "generate")
        self.generate_button.clicked.connect(self.request_generate)
        self.cancel_button = _named(qt.QPushButton("Cancel"), "cancel")
        self.cancel_button.setToolTip("Cancel the jobs of the active document")
        self.cancel_button.clicked.connect(self.request_cancel)
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        col.addLayout(buttons)
        self.live = LiveControls(self)
        col.addLayout(self.live.row)
        self.progress = _named(qt.QProgressBar(), "progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = _named(qt.QLabel(""), "status")
        self.status.setWordWrap(True)
        col.addWidget(self.progress)
        col.addWidget(self.status)
        return page

    def _build_settings(self) -> qt.QWidget:
        content = qt.QWidget()
        form = qt.QFormLayout(content)
        self.server_url = _named(qt.QLineEdit(), "server_url")
        self.token = _named(qt.QLineEdit(), "token")
        self.token.setEchoMode(qt.PASSWORD)
        self.preview = _named(qt.QCheckBox("Show previews while generating"), "preview")
        self.padding = _spin("padding", *_bounds(vocabulary.CONTEXT))
        self.feather = _spin("feather", *_bounds(vocabulary.FEATHER))
        self.grow = _spin("grow", *_bounds(vocabulary.GROW))
        self.transfer = _named(qt.QComboBox(), "transfer")
        for mode, text in TRANSFER_CHOICES:
            self.transfer.addItem(text, mode)
        for label, widget in (("Server URL", self.server_url), ("Token", self.token), ("", self.preview),
                              ("Context padding (px)", self.padding), ("Feather (px)", self.feather),
                              ("Grow (px)", self.grow), ("Transfer", self.transfer)):
            form.addRow(label, widget)
        page = qt.QWidget()  # the settings scroll; Apply and its outcome stay in view below them
        col = qt.QVBoxLayout(page)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(_scrolled(content, "settings_scroll"), 1)
        apply = _named(qt.QPushButton("Apply"), "apply_settings")
        apply.clicked.connect(self.apply_settings)
        self.settings_status = _named(qt.QLabel(""), "settings_status")
        self.settings_status.setWordWrap(True)
        col.addWidget(apply)
        col.addWidget(self.settings_status)
        return page

    # ---------------------------------------------------------------- parameters <-> widgets
    def params(self) -> GenerationParams:
        seed = None
        if not self.seed_random.isChecked():
            text = self.seed.text().strip()
            if not text.isdigit() or int(text) > MAX_SEED:
                raise ParamsError(f"Seed must be a whole number from 0 to {MAX_SEED} (got {text!r})")
            seed = int(text)
        return GenerationParams(
            prompt=self.prompt.toPlainText().strip(), negative_prompt=self.negative.toPlainText().strip(),
            model=self.model.currentData(), mode=self.mode.currentData(), source=self.source.currentData(),
            strength=round(self.strength.value(), 4), steps=self.steps.value(), guidance=round(self.cfg.value(), 4),
            seed=seed, batch=self.batch.value(), loras=self.loras.text().strip(),
            sampler=self.sampler.currentData() or "default",
            **self.canvas.values()).validated()

    def set_params(self, params: GenerationParams) -> None:
        self.prompt.setPlainText(params.prompt)
        self.negative.setPlainText(params.negative_prompt)
        self.loras.setText(params.loras)
        if self.sampler.findData(params.sampler) < 0:  # not offered yet (not connected): keep the choice
            self.sampler.addItem(params.sampler, params.sampler)
        for combo, value in ((self.mode, params.mode), (self.source, params.source), (self.sampler, params.sampler)):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)
        index = self.model.findData(params.model)
        if index < 0 and params.model:
            self.model.addItem(f"{params.model} (not on this server)", params.model)
            index = self.model.count() - 1
        self.model.setCurrentIndex(max(index, 0))
        self.strength.setValue(params.strength)
        self.steps.setValue(params.steps)
        self.cfg.setValue(params.guidance)
        self.batch.setValue(params.batch)
        self.seed_random.setChecked(params.seed is None)
        if params.seed is not None:
            self.seed.setText(str(params.seed))
        self.canvas.set_values(params)
        self._sync_canvas()

    def settings(self) -> Settings:
        return Settings(server_url=self.server_url.text(), token=self.token.text(), preview=self.preview.isChecked(),
                        context_padding=self.padding.value(), feather=self.feather.value(), grow=self.grow.value(),
                        transfer=self.transfer.currentData() or "auto")

    def load_settings(self, settings: Settings) -> None:
        self.server_url.setText(settings.server_url)
        self.token.setText(settings.token)
        self.preview.setChecked(settings.preview)
        self.padding.setValue(settings.context_padding)
        self.feather.setValue(settings.feather)
        self.grow.setValue(settings.grow)
        self.transfer.setCurrentIndex(max(self.transfer.findData(settings.transfer), 0))

    # ---------------------------------------------------------------- actions
    def request_generate(self) -> None:
        self.extension.generate(self)

    def request_cancel(self) -> None:
        self.extension.cancel_document(self)

    def reconnect(self) -> None:
        self.controller.disconnect()
        self.controller.connect()

    def reuse_last_seed(self) -> None:
        if self.controller.last_seed is None:
            self.show_message("No result yet: generate once, then reuse its seed.", True)
            return
        self.seed_random.setChecked(False)
        self.seed.setText(str(self.controller.last_seed))

    def apply_settings(self) -> None:
        """Validate and save; the outcome is shown on the Settings tab itself (an error saves nothing)."""
        try:
            settings = self.settings().validated()
        except SettingsError as exc:
            _show(self.settings_status, f"Not saved: {exc}", True)
            return
        problem = self.extension.save_settings(settings)
        if problem:
            _show(self.settings_status, f"Not saved: {problem}", True)
        else:
            _show(self.settings_status, "Settings saved", False)

    def show_message(self, text: str, error: bool) -> None:
        _show(self.status, text, error)

    def _apply_limits(self, status: Status) -> None:
        """The server's limits become the ranges of Steps and Images."""
        if status.limits is None:
            return
        for box, most, what in ((self.steps, status.limits.max_steps, "steps"),
                                (self.batch, status.limits.max_batch, "images per job")):
            if box.maximum() != most:
                box.setMaximum(most)
                box.setToolTip(f"The server allows at most {most} {what}")

    def on_status(self, status: Status) -> None:
        server = {"connected": f"Connected: {status.server}", "connecting": "Connecting …"}
        self.connection.setText(server.get(status.connection, "Not connected"))
        self._sync_models()
        self._sync_modes()
        self._sync_samplers()
        self._apply_limits(status)
        if status.progress:
            self.progress.setRange(0, max(1, status.progress[1]))
            self.progress.setValue(status.progress[0])
        elif status.jobs:
            self.progress.setRange(0, 0)  # busy indicator while queued
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.cancel_button.setEnabled(status.jobs > 0)
        self.show_message(status.message + (f"  ({status.jobs} job(s) in flight)" if status.jobs else ""),
                          status.error)
        self._sync_canvas_safely()  # last: the status line is up to date whatever the canvas controls find

    def _sync_modes(self) -> None:
        """Offer only the job kinds both this plugin and the server advertised (Auto needs both)."""
        kinds = self.controller.offer().kinds
        wanted = [(text, value) for text, value in MODES
                  if value in kinds or (value == "auto" and set(core.regions.REGION_KINDS) <= set(kinds))]
        if [self.mode.itemData(i) for i in range(self.mode.count())] == [v for _, v in wanted] or not wanted:
            return
        selected = self.mode.currentData()
        self.mode.clear()
        for text, value in wanted:
            self.mode.addItem(text, value)
        self.mode.setCurrentIndex(max(self.mode.findData(selected), 0))

    def _sync_samplers(self) -> None:
        """Offer the samplers both this plugin and the server advertised; while not connected the choice stays
        (it is checked against the server once connected)."""
        samplers = self.controller.offer().samplers
        current = [self.sampler.itemData(i) for i in range(self.sampler.count())]
        if self.controller.welcome is None or current == list(samplers) or not samplers:
            return
        selected = self.sampler.currentData()
        self.sampler.clear()
        for name in samplers:
            self.sampler.addItem(name, name)
        self.sampler.setCurrentIndex(max(self.sampler.findData(selected), 0))

    def _sync_canvas(self) -> None:
        """Resolution, upscale and expand controls for the mode and what the server offers."""
        welcome = self.controller.welcome
        self.canvas.set_upscalers(getattr(welcome, "upscalers", ()) if welcome is not None else ())
        area = source_area(Krita.instance().activeDocument(), self.source.currentData() or "layer")
        self.canvas.update(self.mode.currentData() or "auto", self.controller.offer().tiled, area,
                           core.canvas.model_side(welcome, self.model.currentData()), self.strength.value())

    def _sync_models(self) -> None:
        models = self.controller.models()
        current = [self.model.itemData(i) for i in range(1, self.model.count())]
        if [m.id for m in models] == current or not models:
            return
        selected = self.model.currentData()
        while self.model.count() > 1:
            self.model.removeItem(1)
        for info in models:
            self.model.addItem(f"{info.name} ({info.family})" + (" – default" if info.default else ""), info.id)
        index = self.model.findData(selected)
        self.model.setCurrentIndex(max(index, 0))
        loras = self.controller.welcome.loras if self.controller.welcome else ()
        offered = ", ".join(f"{lo.id} ({lo.family})" for lo in loras[:40]) or "none"
        self.loras.setToolTip(f"Comma-separated LoRA ids, each with an optional :weight (-4 to 4).\n"
                              f"On this server: {offered}")

    def canvasChanged(self, canvas: object) -> None:  # noqa: N802 - Krita's API name
        # Auto's label follows the active document, read once Krita has settled: this is called while a closing
        # document's view is torn down, and reading that document then crashed Krita 6
        qt.QTimer.singleShot(CANVAS_SYNC_MS, self._sync_canvas_safely)

    def _sync_canvas_safely(self) -> None:
        try:
            self._sync_canvas()
        except Exception as exc:  # noqa: BLE001 - the docker went away (Krita quitting) or the document is closing
            print(f"underpaint: canvas controls not updated: {exc!r}")

