"""The Studio through its API (gradio_client against the launched app on loopback): a run streams, stops, reopens
and resumes; bad choices get one-line messages naming the field; sessions and run ids are kept apart."""

import json
import time

import pytest

pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from studio import (  # noqa: E402
    ACC,
    BROWSER_RUNS,
    DEFAULT_BMA,
    LOSS,
    PROGRESS,
    RESULTS,
    STATUS,
    WHATIF,
    run_id_of,
    serve,
    train_args,
)

from core.runstore import RunStore  # noqa: E402


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    runs = tmp_path_factory.mktemp("studio") / "runs"
    demo, url = serve(runs)
    yield demo, url, runs
    demo.close()


def plot(out) -> dict:
    assert out["type"] == "plotly"
    return json.loads(out["plot"])


def names(fig: dict) -> set:
    return {t.get("name") for t in fig["data"]}


def test_run_streams_live_updates(studio):
    demo, url, runs = studio
    c = Client(url, verbose=False)
    job = c.submit(**train_args(steps=12), api_name="/train")
    outs = []
    for out in job:
        outs.append(out)
    outs = job.outputs()
    assert len(outs) >= 4  # at least: at once, start, evaluations, finish
    assert "loading" in outs[0][PROGRESS] or "zero-shot" in outs[0][PROGRESS]
    assert any("step " in o[PROGRESS] for o in outs[:-1])  # live progress before the end
    last = outs[-1]
    assert last[STATUS].startswith("**Finished**")
    acc = plot(last[ACC])
    assert {"zero-shot", "fine-tuned (current weights)", DEFAULT_BMA} <= names(acc)
    assert acc["layout"]["uirevision"] == "acc"
    assert "loss" in names(plot(last[LOSS]))
    assert not any("BMA, " in n for n in names(plot(last[WHATIF])))  # what-if is off by default (issue 16)
    table = last[RESULTS]
    assert table["headers"][0] == "split" and len(table["data"]) >= 2
    rid = run_id_of(outs)
    summary = RunStore(runs / rid).read_summary()
    assert summary["status"] == "done" and summary["steps_done"] == 12
    assert [t.split("~")[0] for t in outs[0][BROWSER_RUNS]] == [rid]  # the browser keeps a signed id


def test_stop_keeps_the_run_then_reopen_and_resume(studio):
    demo, url, runs = studio
    c = Client(url, verbose=False)
    job = c.submit(**train_args(steps=1500, whatif=False), api_name="/train")
    deadline = time.time() + 120
    while time.time() < deadline:
        outs = job.outputs()
        if outs and "step " in outs[-1][PROGRESS]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the run never reported a step")
    other = Client(url, verbose=False)  # another browser session cannot stop it
    assert other.predict(api_name="/stop") == "Nothing to stop."
    assert "Stopping" in c.predict(api_name="/stop")
    job.result(timeout=120)
    last = job.outputs()[-1]
    assert last[STATUS].startswith("**Stopped**") and "Resume" in last[STATUS]
    rid = run_id_of(job.outputs())
    store = RunStore(runs / rid)
    s = store.read_summary()
    assert s["status"] == "cancelled" and 0 < s["steps_done"] < 1500
    assert store.last_checkpoint.is_file()

    fresh = Client(url, verbose=False)  # a page reload: a new session reopens the saved run
    reopened = fresh.predict(rid, [], api_name="/open_run")
    assert reopened[STATUS].startswith("**Stopped**")
    assert f"step {s['steps_done']}/1500" in reopened[PROGRESS]
    assert {"zero-shot", "fine-tuned (current weights)"} <= names(plot(reopened[ACC]))

    job2 = fresh.submit([], api_name="/resume")  # continues the run the session has open
    time.sleep(1.0)
    fresh.predict(api_name="/stop")
    job2.result(timeout=120)
    s2 = store.read_summary()
    assert s2["status"] == "cancelled" and s2["steps_done"] >= s["steps_done"]
    assert sum(1 for e in store.read_events() if e["kind"] == "start") == 2


@pytest.mark.parametrize("kw, message", [
    (dict(sources=[]), "Source domains: pick at least one"),
    (dict(targets=[]), "Target domains: pick at least one"),
    (dict(sources=["photo", "sketch"], targets=["sketch"]), "sketch is also a source"),
    (dict(steps=5000), "Steps: 5000 is more than this server's cap (2000)"),
    (dict(batch_size=100), "Batch size: 100 is more than this server's cap (64)"),
    (dict(lam=0.0), "λ (margin): method clipood needs lam > 0"),
    (dict(setting="open_class", base_classes=[]), "Base classes: pick at least one"),
    (dict(setting="open_class", base_classes=["circle", "square", "triangle", "star", "heart", "cross", "ring",
                                               "diamond", "hexagon", "crescent", "arrow", "semicircle",
                                               "pentagon", "cloud", "lightning bolt", "drop"]),
     "at least one base and one new class"),
])
def test_bad_choices_get_clear_messages(studio, kw, message):
    demo, url, runs = studio
    before = set(p.name for p in runs.iterdir()) if runs.exists() else set()
    c = Client(url, verbose=False)
    with pytest.raises(Exception) as e:
        c.predict(**train_args(**kw), api_name="/train")
    assert message in str(e.value)
    assert "Traceback" not in str(e.value)
    assert set(p.name for p in runs.iterdir()) == before  # nothing was started


@pytest.mark.parametrize("bad", ["../etc", "/etc/passwd", "..", "a/../../b", "nope-run", ".browser-state-secret"])
def test_run_ids_are_never_paths(studio, bad):
    demo, url, runs = studio
    c = Client(url, verbose=False)
    with pytest.raises(Exception) as e:
        c.predict(bad, [], api_name="/open_run")
    assert "run" in str(e.value).lower() and "Traceback" not in str(e.value)


def test_inspection_endpoints(studio):
    demo, url, runs = studio
    c = Client(url, verbose=False)
    outs = c.submit(**train_args(steps=4, whatif=False), api_name="/train")
    outs.result(timeout=120)
    rid = run_id_of(outs.outputs())
    data = ["toy-shapes", "", None, "domain_shift", ["photo", "cartoon"], ["sketch", "painting", "pixel", "infrared"],
            [], 0.9, 4, 3]
    fig, summary = c.predict(rid, "result", "domain", 200, "PCA", False, [rid], "tiny-random", *data,
                                     api_name="/embeddings")
    assert {"photo", "sketch", "class text"} <= names(plot(fig)) and "accuracy" in summary
    pair = plot(c.predict(rid, "result", "class", 200, "PCA", True, [rid], "tiny-random", *data,
                          api_name="/embeddings")[0])  # beside zero-shot: two panels on one projection
    titles = [a["text"] for a in pair["layout"]["annotations"]]
    assert titles == ["zero-shot (pre-trained)", "result (the method's output)"], titles
    assert pair["layout"]["xaxis"]["range"] == pair["layout"]["xaxis2"]["range"]
    panel = {ax: sorted(t["name"] for t in pair["data"] if t.get("xaxis", "x") == ax) for ax in ("x", "x2")}
    assert "class text" in panel["x"] and panel["x"] == panel["x2"]  # the same classes and texts in both panels
    img, info = c.predict("3:123", [rid], "tiny-random", *data, api_name="/embedding_point")
    assert "predicted" in info and img
    m = plot(c.predict("tiny-random", "cat, dog, car", 0.3, *data, api_name="/margins"))
    assert len(m["data"]) == 2 and m["data"][0]["x"] == ["cat", "dog", "car"]
    assert "never read" not in m["layout"]["title"]["text"]  # a random model: no claim about its pre-training
    toy = plot(c.predict("toy-clip", "cat, dog, square", 0.3, *data, api_name="/margins"))
    assert "toy-clip never read “cat”, “dog” in pre-training" in toy["layout"]["title"]["text"]
    pick = c.predict("sketch", *data, api_name="/playground_pick")
    assert "from **sketch**" in pick[1]
    probs, msg = c.predict(handle_file(pick[0]), "circle, square, star", [rid], [rid], "tiny-random", *data,
                           api_name="/playground")
    assert {"zero-shot", f"clipood · {rid[-6:]}"} <= names(plot(probs)) and "zero-shot:" in msg
    assert "never read" not in msg
    _, msg = c.predict(handle_file(pick[0]), "cat, circle", [], [], "toy-clip", *data, api_name="/playground")
    assert "toy-clip never read “cat” in pre-training" in msg
    grid, counts, shortcut, message = c.predict(*data, api_name="/preview_data")
    assert "16 classes" in message and names(plot(counts)) >= {"photo (source)", "sketch (target)"}


def test_private_runs_are_not_visible_to_other_browsers(tmp_path):
    """Public-Space mode: a run is visible to the session that started it and, after a reload, to the browser
    holding its signed token; never to another browser, not even one that knows or forges the id."""
    demo, url = serve(tmp_path / "runs", shared_runs=False, allow_local_paths=False)
    try:
        c = Client(url, verbose=False)
        for dataset, path, message in (("hf:", "/etc", "not a hub id"), ("hf:", "../../x", "not a hub id"),
                                       ("folder:", "/etc", "not in the list of choices")):
            with pytest.raises(Exception) as e:  # a public server never opens a server path typed by a visitor
                c.predict(**train_args(dataset=dataset, data_path=path), api_name="/train")
            assert message in str(e.value)
        a = Client(url, verbose=False)
        job = a.submit(**train_args(steps=3, whatif=False), api_name="/train")
        job.result(timeout=120)
        rid, tokens = run_id_of(job.outputs()), job.outputs()[0][BROWSER_RUNS]
        assert a.predict(rid, [], api_name="/open_run")[STATUS].startswith("**Finished**")  # same session
        b = Client(url, verbose=False)
        for claim in ([], [rid], [f"{rid}~{'0' * 24}"]):
            with pytest.raises(Exception) as e:
                b.predict(rid, claim, api_name="/open_run")
            assert "no saved run" in str(e.value)
        reloaded = Client(url, verbose=False)  # A's browser after a reload: a new session with A's tokens
        assert reloaded.predict(rid, tokens, api_name="/open_run")[STATUS].startswith("**Finished**")
    finally:
        demo.close()


def test_a_disk_quota_makes_room_for_new_runs(tmp_path):
    """With a (tiny) runs-folder quota, starting a run deletes the oldest finished one first."""
    from app.options import Caps

    demo, url = serve(tmp_path / "runs", caps=Caps(max_steps=2000, max_batch=64, max_runs_gb=1e-9))
    try:
        c = Client(url, verbose=False)
        ids = []
        for _ in range(2):
            job = c.submit(**train_args(steps=2, whatif=False), api_name="/train")
            job.result(timeout=120)
            ids.append(run_id_of(job.outputs()))
            assert job.outputs()[-1][STATUS].startswith("**Finished**")
        assert not (tmp_path / "runs" / ids[0]).exists() and (tmp_path / "runs" / ids[1] / "summary.json").is_file()
    finally:
        demo.close()


def test_a_run_the_server_died_in_is_interrupted_and_resumes(studio):
    """A run left without a summary by a dead server (SIGKILL, restart) shows as Interrupted, not Running forever,
    and Resume in the page finishes it from its last checkpoint."""
    import os

    from core.config import RunConfig
    from core.engine import train

    demo, url, runs = studio
    rid = "20260101-000000-killed-run"
    cfg = RunConfig(model="tiny-random", steps=6, batch_size=8, data_options={"shots": 4, "eval_per": 3},
                    eval_every=0, checkpoint_every=2)
    gen = train(cfg, runs / rid)
    for ev in gen:
        if ev.kind == "step" and ev.step == 3:
            break  # nothing more runs: the folder is as a SIGKILL leaves it (plus the summary the close writes)
    gen.close()
    store = RunStore(runs / rid)
    store.summary_path.unlink()
    old = time.time() - 600
    os.utime(store.events_path, (old, old))
    c = Client(url, verbose=False)
    shown = c.predict(rid, [], api_name="/open_run")
    assert shown[STATUS].startswith("**Interrupted**") and "continue from its last checkpoint (step 2)" in shown[STATUS]
    job = c.submit([], api_name="/resume")
    job.result(timeout=120)
    assert job.outputs()[-1][STATUS].startswith("**Finished**")
    s = store.read_summary()
    assert s["status"] == "done" and s["steps_done"] == 6


def test_export_the_shown_run_as_zip_csv_and_html(studio):
    """Issue 15, export: the run just shown comes back as its folder (zip), its metrics (CSV, each accuracy with
    the image set it was measured on) and its figures (one interactive HTML page that works offline)."""
    import csv
    import zipfile

    demo, url, runs = studio
    c = Client(url, verbose=False)
    with pytest.raises(Exception, match="start a run or open a saved one"):
        c.predict([], api_name="/export_run")
    job = c.submit(**train_args(steps=6, whatif=False), api_name="/train")
    outs = job.outputs() if job.result() is not None else []
    rid = run_id_of(outs)
    files = c.predict(outs[0][BROWSER_RUNS], api_name="/export_run")
    paths = {p.rsplit(".", 1)[-1]: p for p in (f if isinstance(f, str) else f["path"] for f in files)}
    with zipfile.ZipFile(paths["zip"]) as zf:
        names = set(zf.namelist())
    assert {f"{rid}/config.json", f"{rid}/summary.json", f"{rid}/events.jsonl"} <= names, names
    rows = list(csv.DictReader(open(paths["csv"], encoding="utf-8")))
    acc = [r for r in rows if r["quantity"] == "accuracy"]
    assert {r["evaluated_on"] for r in acc} == {"all images"}  # the embedded world: every point on every image
    assert any(r["model"] == "zero-shot" and r["split"] == "ood" for r in acc)
    assert len([r for r in rows if r["quantity"] == "loss"]) == 6
    page = open(paths["html"], encoding="utf-8").read()
    assert page.count('class="plotly-graph-div"') == 4 and "plotly.js" in page[:20000].lower()
