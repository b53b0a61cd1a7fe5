# ruff: noqa: F821 - the names come from the helpers of gimp_batch_e2e.py this file is appended to
# Appended to the helpers of gimp_batch_e2e.py (everything above its SCENARIOS list) by test_gimp_live_e2e.py;
# runs INSIDE gimp-console. gimp-console cannot click, and a PDB call to the live procedure blocks this script
# until its window closes: so this script installs a temporary procedure that the live window calls on every
# tick (test hook ``live_tick``). It paints (writes pixels into the layer, as a brush does), watches what the
# window shows, and answers with the button to press.
LIVE = "plug-in-underpaint-live"
TICK = "underpaint-test-live-tick"
STROKE = bytes((255, 0, 0, 255)) * 64  # an 8x8 red dab, R'G'B'A u8


def hooks(**values):
    with open(os.path.join(WORK, "hooks.json"), "w") as f:
        json.dump(values, f)


def dab(layer, x, y):
    buf = layer.get_buffer()
    buf.set(rect(x, y, 8, 8), "R'G'B'A u8", STROKE)
    buf.flush()
    layer.update(x, y, 8, 8)


class Script:
    """The painter's side of one live window: ``step(state)`` -> the button to press ("" for none)."""

    def __init__(self, steps):
        self.steps, self.facts, self.index, self.since = steps, {"states": []}, 0, time.monotonic()

    def __call__(self, state):
        self.facts["states"].append({k: state[k] for k in ("tick", "frame", "status", "error", "running")})
        while self.index < len(self.steps):
            step = self.steps[self.index]
            answer = step(state, self.facts, time.monotonic() - self.since)
            if answer is None:  # keep waiting in this step
                if time.monotonic() - self.since > 120:
                    self.facts.setdefault("timeout", self.index)
                    return "close"
                return ""
            self.index, self.since = self.index + 1, time.monotonic()
            if answer:
                return answer
        return "close"


SCRIPT = [None]


def _tick(procedure, config, data):
    try:
        action = SCRIPT[0](json.loads(config.get_property("state")))
    except Exception:
        SCRIPT[0].facts.setdefault("script_error", traceback.format_exc())
        action = "close"
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
    if values.length() > 1:
        values.remove(1)
    values.insert(1, GObject.Value(GObject.TYPE_STRING, action))
    return values


def install_tick():
    plug_in = Gimp.get_plug_in()
    proc = Gimp.Procedure.new(plug_in, TICK, Gimp.PDBProcType.TEMPORARY, _tick, None)
    proc.add_string_argument("state", "state", "the live window's state, JSON", "", GObject.ParamFlags.READWRITE)
    proc.add_string_return_value("action", "action", "the button to press", "", GObject.ParamFlags.READWRITE)
    plug_in.add_temp_procedure(proc)


install_tick()
hooks(live_tick=TICK)


def live_image():
    img = Gimp.Image.new(128, 96, Gimp.ImageBaseType.RGB)
    new_layer(img, "background", 128, 96, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3, seed=2)
    paint = new_layer(img, "paint", 128, 96, Gimp.ImageType.RGBA_IMAGE, 0, 0, None, 0, "R'G'B'A u8", 4, 3)
    img.set_selected_layers([paint])
    return img, paint


def run_live(img, paint, steps, **args):
    SCRIPT[0] = Script(steps)
    status = call(LIVE, img, paint, prompt="live fox", strength=0.4, seed=4242, steps=4, server_url=DATA["url"],
                  **args)
    return status, SCRIPT[0].facts


def scenario_live():
    img, paint = live_image()
    before = describe(img)
    strokes = {"i": 0}

    def first(state, facts, waited):
        if state["frame"] is None:
            return None
        facts["first_frame_s"] = round(waited, 3)
        facts["with_live"] = describe(img)
        facts["selected_live"] = [layer.get_id() for layer in img.get_selected_layers()]
        return ""

    def idle(state, facts, waited):
        if "idle_from" not in facts and waited >= 0.5:
            facts["idle_from"] = state["stats"]
        if waited < 2.5:
            return None
        start, facts["idle_stats"] = facts["idle_from"], state["stats"]
        facts["idle_window"] = {k: state["stats"]["tick_ms"][k]["n"] - start["tick_ms"][k]["n"]
                                for k in ("idle", "busy")}
        facts["idle_window"]["read_bytes"] = state["stats"]["read_bytes"] - start["read_bytes"]
        return ""

    def stroke(state, facts, waited):
        i = strokes["i"]
        dab(paint, 10 + 30 * i, 40)
        facts.setdefault("strokes", []).append({"before": state["frame"], "t": time.monotonic()})
        return ""

    def landed(state, facts, waited):
        last = facts["strokes"][-1]
        if state["frame"] is None or state["frame"] <= last["before"]:
            return None
        last["latency_s"] = round(time.monotonic() - last["t"], 3)
        strokes["i"] += 1
        return ""

    def apply(state, facts, waited):
        facts["applied_frame"], facts["stats"] = state["frame"], state["stats"]
        return "apply"

    def stop(state, facts, waited):
        facts["after_apply"] = describe(img)
        facts["apply_status"] = state["status"]
        return "stop"

    def paint_after_stop(state, facts, waited):
        facts["after_stop"] = {"layers": describe(img), "state": state}
        dab(paint, 100, 80)
        return ""

    def quiet(state, facts, waited):
        if waited < 2.0:
            return None
        facts["stopped_state"] = state
        return "close"

    steps = [first, idle] + [stroke, landed] * 3 + [apply, stop, paint_after_stop, quiet]
    status, facts = run_live(img, paint, steps)
    facts.update(status=status, before=before, after=describe(img), paint_id=paint.get_id(),
                 selected_after=[layer.get_id() for layer in img.get_selected_layers()],
                 painted=[digest(read(paint, "R'G'B'A u8", x, 40, 8, 8)) for x in (10, 40, 70)],
                 stroke=digest(STROKE))
    return facts


def scenario_live_server_down():
    """Stops the test server: runs last."""
    img, paint = live_image()
    before = describe(img)

    def first(state, facts, waited):
        if state["frame"] is None:
            return None
        os.kill(DATA["server_pid"], signal.SIGTERM)
        facts["killed_at_tick"] = state["tick"]
        return ""

    def failed(state, facts, waited):
        if not state["error"]:
            return None
        facts["error"], facts["error_after_s"] = state["error"], round(waited, 3)
        return ""

    def quiet(state, facts, waited):
        if waited < 2.0:
            return None
        facts["later"] = state
        return "close"

    status, facts = run_live(img, paint, [first, failed, quiet])
    facts.update(status=status, before=before, after=describe(img))
    return facts


SCENARIOS = [scenario_live, scenario_live_server_down]
results = {}
for scenario in SCENARIOS:
    name = scenario.__name__.replace("scenario_", "")
    try:
        results[name] = scenario()
    except Exception:
        results[name] = {"batch_error": traceback.format_exc()}
    with open(os.path.join(WORK, "facts.json"), "w") as _f:
        json.dump(results, _f, indent=1)
