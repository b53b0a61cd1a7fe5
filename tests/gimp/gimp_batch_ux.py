# ruff: noqa: F821 - the names come from the helpers of gimp_batch_e2e.py this file is appended to
# Appended to the helpers of gimp_batch_e2e.py (everything above its SCENARIOS list) by test_gimp_ux_e2e.py;
# runs INSIDE gimp-console-3.0. The plug-in's test hooks (hooks.json) answer its dialog with OK once shown.
REUSE = "plug-in-underpaint-reuse"


def hooks(**values):
    with open(os.path.join(WORK, "hooks.json"), "w") as f:
        json.dump(values, f)


hooks(dialog="ok")


def remember_server(url):
    with open(os.path.join(Gimp.directory(), "underpaint.json"), "w") as f:
        json.dump({"url": url, "token": None}, f)


def selection_digest(img):
    return digest(read(img.get_selection(), "Y u8"))


def selected_ids(img):
    return [layer.get_id() for layer in img.get_selected_layers()]


def canvas_image():
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    new_layer(img, "background", 64, 48, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3, seed=2)
    paint = new_layer(img, "paint", 48, 40, Gimp.ImageType.RGBA_IMAGE, 8, 4, None, 0, "R'G'B'A u8", 4, 3)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 30, 20)
    Gimp.Selection.feather(img, 4.0)
    img.set_selected_layers([paint])
    return img, paint


def snapshot(img, paint):
    return {"layers": describe(img), "selected": selected_ids(img), "selection": selection_digest(img),
            "paint": digest(read(paint, "R'G'B'A u8")), "flat": digest(flat(img, "R'G'B'A u8"))}


def scenario_canvas_preview_success():
    remember_server(DATA["url"])
    img, paint = canvas_image()
    before = snapshot(img, paint)
    status, message = call(IMG2IMG, img, paint, Gimp.RunMode.WITH_LAST_VALS)
    return {"status": status, "message": message, "before": before, "after": snapshot(img, paint),
            "new": new_result(before["layers"], img), "paint_id": paint.get_id()}


def scenario_canvas_preview_cancel():
    remember_server(DATA["url"])
    img, paint = canvas_image()
    before = snapshot(img, paint)
    hooks(dialog="ok", cancel_after=1)
    try:
        status, message = call(IMG2IMG, img, paint, Gimp.RunMode.WITH_LAST_VALS)
    finally:
        hooks(dialog="ok")
    return {"status": status, "message": message, "before": before, "after": snapshot(img, paint)}


def kill_on(event, seen_runs, found):
    deadline = time.time() + 120
    while time.time() < deadline:
        records = plugin_log()
        starts = [r for r in records if r["event"] == "run_start"]
        if len(starts) > seen_runs:
            pid = starts[-1]["pid"]
            if any(r["event"] == event and r["pid"] == pid for r in records):
                os.kill(pid, signal.SIGKILL)
                found["killed"] = pid
                return
        time.sleep(0.02)


def scenario_hard_kill_then_next_run_cleans_up():
    remember_server(DATA["url"])
    img, paint = canvas_image()
    before = snapshot(img, paint)
    found = {}
    runs = sum(1 for r in plugin_log() if r["event"] == "run_start")
    watcher = threading.Thread(target=kill_on, args=("canvas_preview", runs, found), daemon=True)
    watcher.start()
    killed = call(IMG2IMG, img, paint, Gimp.RunMode.WITH_LAST_VALS)
    watcher.join(5)
    after_kill = snapshot(img, paint)
    Gimp.Selection.none(img)  # the next run is refused at once (inpaint needs a selection) yet cleans up
    next_run = call(INPAINT, img, paint, server_url=DATA["dead_url"], **COMMON)  # any run cleans up
    return {"killed": found.get("killed"), "killed_status": killed, "before": before, "after_kill": after_kill,
            "next_run": next_run, "after_next_run": snapshot(img, paint)}


def scenario_values_survive_a_failed_run():
    img, paint = canvas_image()
    first = call(IMG2IMG, img, paint, Gimp.RunMode.INTERACTIVE, prompt="a kept prompt", negative_prompt="mud",
                 steps=7, seed=99, model="no-such-model", server_url=DATA["url"])
    second = call(IMG2IMG, img, paint, Gimp.RunMode.INTERACTIVE)  # a fresh config: defaults only
    return {"first": first, "second": second}


def scenario_dialog_without_server():
    """The painter's last values name a server that is down (the dialog's values win over the caller's)."""
    path = os.path.join(Gimp.directory(), "underpaint-values.json")
    with open(path) as f:
        values = json.load(f)
    values["img2img"]["server-url"] = DATA["dead_url"]
    with open(path, "w") as f:
        json.dump(values, f)
    img, paint = canvas_image()
    return {"run": call(IMG2IMG, img, paint, Gimp.RunMode.INTERACTIVE)}


def scenario_limits_and_batch():
    img, paint = canvas_image()
    Gimp.Selection.none(img)
    before = describe(img)
    too_many_steps = call(IMG2IMG, img, paint, server_url=DATA["url"], prompt="x", steps=400)
    too_many_images = call(IMG2IMG, img, paint, server_url=DATA["url"], prompt="x", batch=40)
    unchanged = describe(img) == before
    batch = call(IMG2IMG, img, paint, server_url=DATA["url"], prompt="two of them", seed=41, batch=2, steps=4)
    return {"too_many_steps": too_many_steps, "too_many_images": too_many_images, "unchanged": unchanged,
            "batch": batch, "before": before, "after": describe(img), "new": new_result(before, img)}


def scenario_reuse_parameters():
    img, paint = canvas_image()
    before = describe(img)
    made = call(INPAINT, img, paint, server_url=DATA["url"], prompt="reuse me", negative_prompt="fog", seed=321,
                steps=5, cfg=4.5, sampler="euler", context=8, strength=0.6)
    result = [layer for layer, _ in all_layers(img) if layer.get_id() not in {f["id"] for f in before}]
    plain = call(REUSE, img, paint)
    reused = call(REUSE, img, result[0], Gimp.RunMode.INTERACTIVE) if result else None
    return {"made": made, "plain_layer": plain, "reused": reused, "result_id": result[0].get_id() if result else None}


SCENARIOS = [scenario_canvas_preview_success, scenario_canvas_preview_cancel,
             scenario_hard_kill_then_next_run_cleans_up, scenario_values_survive_a_failed_run,
             scenario_dialog_without_server,
             scenario_limits_and_batch, scenario_reuse_parameters]
results = {}
for scenario in SCENARIOS:
    name = scenario.__name__.replace("scenario_", "")
    if name not in DATA.get("only", [name]):
        continue
    try:
        results[name] = scenario()
    except Exception:
        results[name] = {"batch_error": traceback.format_exc()}
    with open(os.path.join(WORK, "facts.json"), "w") as _f:
        json.dump(results, _f, indent=1)
