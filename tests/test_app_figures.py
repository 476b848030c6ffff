"""Figure builders (app/figures.py), run records and text outputs: records in, figures/tables out, values checked."""

import numpy as np
import pytest

pytest.importorskip("plotly")

from app import figures, render  # noqa: E402
from app.records import RunRecord, model_label, parse_average  # noqa: E402
from core.explore import average_shares, beta_schedule  # noqa: E402

CFG = {"method": "clipood", "setting": "domain_shift", "beta": 0.5, "ema_decay": 0.99, "wiseft_alpha": 0.5,
       "dataset": "toy-shapes", "model": "tiny-random", "seed": 0, "batch_size": 8}


def acc(a, b):
    return {"id": a, "ood": b}


def make_events(total=10, finish="done", whatif=True):
    """The event dicts the engine writes for a short clipood run (what-if averages tracked when asked)."""
    models = ["bma"] + (["bma:0.1", "bma:1.0", "bma:4.0", "ema", "wiseft:0.25", "wiseft", "wiseft:0.75"] if whatif
                        else [])
    ev = [{"kind": "start", "run_dir": "x", "config": CFG, "total_steps": total, "start_step": 0,
           "splits": {"train": 100, "id": 50, "ood": 60}, "classes": ["a", "b"], "device": "cpu", "logit_scale": 10},
          {"kind": "eval", "step": 0, "accuracy": {"zeroshot": acc(50.0, 40.0)}, "full": True},
          {"kind": "eval", "step": 0, "accuracy": {m: acc(52.0, 38.0) for m in ["zeroshot", "current"] + models},
           "full": False}]  # the engine's step-0 evaluation on the fixed subsample
    for s in range(1, total + 1):
        ev.append({"kind": "step", "step": s, "total_steps": total, "loss": 2.0 - 0.1 * s, "lr": 1e-4,
                   "bma_weight": 0.1, "images_per_s": 100.0, "elapsed_s": s * 0.1, "eta_s": (total - s) * 0.1})
        if s == total // 2:
            ev.append({"kind": "eval", "step": s, "accuracy": {"current": acc(70.0, 30.0),
                                                                **{m: acc(60.0, 42.0) for m in models}}, "full": False})
    if finish:
        final = {"current": acc(80.0, 25.0), "bma": acc(75.0, 45.0)}
        if whatif:
            final.update({"bma:0.1": acc(70.0, 46.0), "bma:1.0": acc(78.0, 41.0), "bma:4.0": acc(79.0, 35.0),
                          "ema": acc(79.0, 30.0), "wiseft:0.25": acc(60.0, 44.0), "wiseft": acc(70.0, 43.0),
                          "wiseft:0.75": acc(76.0, 38.0)})
        ev.append({"kind": "eval", "step": total, "accuracy": final, "full": True})
        ev.append({"kind": "finish", "status": finish, "reason": "finished",
                   "summary": {"status": finish, "zeroshot": acc(50.0, 40.0), "final": final["current"],
                               "result": final["bma"], "steps_done": total, "wall_s": 3.0, "config": CFG}})
    return ev


@pytest.fixture
def rec():
    return RunRecord.from_events(make_events(), run_id="run-1")


def traces(fig, name):
    return [t for t in fig.data if t.name == name]


# ------------------------------------------------------------------------------------------------------ records


def test_record_folds_events(rec):
    assert rec.status == "done" and rec.step == 10 and rec.total_steps == 10
    assert rec.zeroshot == acc(50.0, 40.0)
    assert rec.split_names() == ["id", "ood"]
    assert rec.live_models() == ["current", "bma"]
    assert rec.result_model == "bma"
    assert rec.final_eval()["step"] == 10
    pts = rec.whatif_points()
    assert [b for b, _ in pts["bma"]] == [0.1, 0.5, 1.0, 4.0]
    assert [a for a, _ in pts["wiseft"]] == [0.25, 0.5, 0.75]
    assert [n for _, n in pts["ema"]] == ["ema"]


def test_record_resume_drops_replayed_steps():
    ev = make_events(total=10, finish=None)
    ev.append({**ev[0], "start_step": 4})
    r = RunRecord.from_events(ev)
    assert r.step == 4 and r.status == "running"
    assert all(e["step"] <= 4 for e in r.evals)


def test_parse_average_and_labels():
    assert parse_average("bma", CFG) == ("bma", 0.5)
    assert parse_average("bma:0.1", CFG) == ("bma", 0.1)
    assert parse_average("wiseft", CFG) == ("wiseft", 0.5)
    with pytest.raises(ValueError):
        parse_average("current", CFG)
    assert model_label("bma:4.0", CFG) == "BMA β=4"
    assert model_label("current", CFG).startswith("fine-tuned")


# ------------------------------------------------------------------------------------------------------ figures


def test_accuracy_curves(rec):
    """Issue 15, honest curves: points on a subsample and on all images never share a line. The subsample line and
    its zero-shot reference are like for like; the final full evaluations are separate diamonds, labelled so."""
    rec.config = {**CFG, "eval_subsample": 20}  # (splits of 50 and 60 images: a subsample)
    fig = figures.accuracy_curves(rec)
    assert fig.layout.uirevision == "acc"
    zs = traces(fig, "zero-shot")  # like for like: the zero-shot model on the same subsample as the curves
    assert len(zs) == 2 and list(zs[0].y) == [52.0, 52.0] and list(zs[1].y) == [38.0, 38.0]
    full = traces(fig, "zero-shot (all images)")  # ...and on the full split, beside the final diamonds
    assert [list(t.y) for t in full] == [[50.0], [40.0]] and list(full[0].x) == [10]
    cur = traces(fig, "fine-tuned (current weights)")
    assert list(cur[0].x) == [0, 5] and list(cur[0].y) == [52.0, 70.0]  # the subsample points only
    assert [list(t.y) for t in traces(fig, "fine-tuned (current weights) (all images)")] == [[80.0], [25.0]]
    bma = traces(fig, "BMA β=0.5")
    assert list(bma[1].y) == [38.0, 42.0]
    assert traces(fig, "BMA β=0.5 (all images)")[1].marker.symbol == "diamond"
    assert "subsample of 20" in fig.layout.title.text and "all images" in fig.layout.title.text
    assert not traces(fig, "EMA decay=0.99")  # what-if variants stay out of the live plot


def test_accuracy_curves_on_every_image_are_one_line_each(rec):
    """A run that evaluates every image at every point (``EVERY_IMAGE``): one line per model, the last point on it,
    and the zero-shot reference is the full-split value."""
    from core.config import EVERY_IMAGE

    rec.config = {**CFG, "eval_subsample": EVERY_IMAGE}
    fig = figures.accuracy_curves(rec)
    assert list(traces(fig, "fine-tuned (current weights)")[0].y) == [52.0, 70.0, 80.0]
    assert list(traces(fig, "zero-shot")[0].y) == [50.0, 50.0]
    assert not [t for t in fig.data if "(all images)" in (t.name or "")]
    assert "every point: all images" in fig.layout.title.text


def test_accuracy_curves_zero_shot_only_and_empty():
    r = RunRecord(config=CFG, total_steps=10, zeroshot=acc(50.0, 40.0))
    fig = figures.accuracy_curves(r)
    assert len(traces(fig, "zero-shot")) == 2
    empty = figures.accuracy_curves(RunRecord())
    assert not empty.data and empty.layout.annotations


def test_loss_curve_thins_and_keeps_last():
    ev = make_events(total=1000, finish=None, whatif=False)
    r = RunRecord.from_events(ev)
    fig = figures.loss_curve(r)
    loss = traces(fig, "loss")[0]
    assert len(loss.x) <= 401 and loss.x[-1] == 1000 and loss.y[0] == pytest.approx(1.9)
    assert fig.layout.uirevision == "loss"
    assert not figures.loss_curve(RunRecord()).data


def test_beta_schedule_figure():
    sched = beta_schedule(100, 0.5)
    shares = average_shares(100, 0.5, 40)
    fig = figures.beta_schedule(sched, shares, 40, 0.5)
    done = traces(fig, "folded in so far")[0]
    assert done.x[-1] == 40 and done.fill == "tozeroy"
    weights = traces(fig, "Beta(0.5, 0.5) weights")[0]
    assert len(weights.x) == 101 and sum(weights.y) == pytest.approx(1.0)
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(b.x[0] for b in bars) == pytest.approx(100.0)
    assert any(s.type == "line" and s.x0 == 40 for s in fig.layout.shapes)  # the current step


def test_whatif(rec):
    fig = figures.whatif(rec)
    bma_id = traces(fig, "BMA, in-distribution (sources)")[0]
    assert list(bma_id.x) == [0.1, 0.5, 1.0, 4.0] and list(bma_id.y) == [70.0, 75.0, 78.0, 79.0]
    wise = traces(fig, "WiSE-FT, out-of-distribution (targets)")[0]
    assert list(wise.x) == [0.0, 0.25, 0.5, 0.75, 1.0] and list(wise.y) == [40.0, 44.0, 43.0, 38.0, 25.0]
    assert fig.layout.xaxis.type == "log"


def test_whatif_waits_for_the_run():
    running = RunRecord.from_events(make_events(finish=None))
    assert not figures.whatif(running).data
    plain = RunRecord.from_events(make_events(whatif=False))
    assert not figures.whatif(plain).data  # nothing tracked: an explanation instead


def test_sample_grid_and_counts():
    mosaic = np.zeros((2 * 48, 3 * 48, 3), dtype=np.uint8)
    fig = figures.sample_grid(mosaic, ["photo", "sketch"], ["a", "b", "c"], {"photo": "source", "sketch": "target"})
    assert fig.data[0].type == "image" and fig.data[1].hovertext[1][2] == "sketch (target) · c"
    assert list(fig.layout.yaxis.ticktext) == ["photo (source)", "sketch (target)"]
    counts = figures.split_counts({"train": {"photo": 10}, "ood": {"sketch": 7}}, {"photo": "source"})
    assert [t.name for t in counts.data] == ["photo (source)", "sketch"]
    assert list(counts.data[1].y) == [0, 7]


def test_colour_shortcut_heatmap():
    m = np.array([[0.9, 0.1], [0.0, 1.0]])
    fig = figures.colour_shortcut(m, ["circle", "square"], ["red", "blue"])
    assert np.allclose(np.asarray(fig.data[0].z), m * 100)
    assert list(fig.data[0].x) == ["red", "blue"]


def test_margins():
    sim = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, 0.5], [0.2, 0.5, 1.0]])
    fig = figures.margins(sim, ["a", "b", "c"], 0.3)
    marg, s = np.asarray(fig.data[0].z), np.asarray(fig.data[1].z)
    assert marg[0, 2] == pytest.approx(0.3 * 0.8) and marg[0, 1] == pytest.approx(0.3 * 0.2)
    assert np.allclose(np.diag(marg), 0) and np.allclose(s, sim)
    assert "λ = 0.3" in fig.layout.annotations[0].text


def test_embedding():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(12, 2))
    labels = np.array([0, 1, 2] * 4)
    domains = np.array([0] * 6 + [1] * 6)
    preds = labels.copy()
    preds[0] = 1
    fig = figures.embedding(coords, labels, domains, ["a", "b", "c"], ["photo", "sketch"], "class", preds,
                            np.zeros((3, 2)), "t")
    assert [t.name for t in fig.data] == ["a", "b", "c", "class text"]
    assert sorted(np.concatenate([np.asarray(t.customdata) for t in fig.data[:3]]).tolist()) == list(range(12))
    assert fig.data[0].marker.symbol[0] == "x"  # the misclassified point
    assert list(fig.data[3].text) == ["a", "b", "c"]
    by_dom = figures.embedding(coords, labels, domains, ["a", "b", "c"], ["photo", "sketch"], "domain", preds)
    assert [t.name for t in by_dom.data] == ["photo", "sketch"]
    by_ok = figures.embedding(coords, labels, domains, ["a", "b", "c"], ["photo", "sketch"], "correct", preds)
    assert [len(t.x) for t in by_ok.data] == [11, 1]


def test_compare_curves_uses_each_methods_output():
    ft_cfg = {**CFG, "method": "finetune"}
    ev = make_events(whatif=False)
    ev[0] = {**ev[0], "config": ft_cfg}
    ft = RunRecord.from_events(ev, run_id="r-ft")
    cl = RunRecord.from_events(make_events(whatif=False), run_id="r-cl")
    fig = figures.compare_curves([("finetune", ft), ("clipood", cl)])
    assert list(traces(fig, "finetune")[1].y) == [38.0, 30.0, 25.0]  # last weights
    assert list(traces(fig, "clipood")[1].y) == [38.0, 42.0, 45.0]  # the Beta average
    assert list(traces(fig, "zero-shot")[0].y) == [52.0, 52.0]
    assert not figures.compare_curves([]).data


def test_probabilities_top_k_order():
    p = {"zero-shot": np.array([0.1, 0.6, 0.3]), "run": np.array([0.2, 0.2, 0.6])}
    fig = figures.probabilities(p, ["a", "b", "c"], top=2)
    assert list(fig.data[0].y) == ["c", "b"]  # most likely last (top of a horizontal bar chart)
    assert list(fig.data[0].x) == pytest.approx([30.0, 60.0])


# ------------------------------------------------------------------------------------------------ text and tables


def test_results_table_and_progress(rec):
    df = render.results_table(rec)
    assert list(df["split"])[:2] == ["in-distribution (sources)", "out-of-distribution (targets)"]
    row = df.iloc[1].tolist()
    assert row[1:] == [40.0, 25.0, 45.0, 5.0]
    html = render.progress_html(rec)
    assert 'aria-valuenow="100"' in html and "done" in html
    running = RunRecord.from_events(make_events(finish=None))
    assert "ETA" in render.progress_html(running)
    assert render.results_table(running).empty
    assert "Stopped" in render.status_markdown(RunRecord.from_events(make_events(finish="cancelled")))


def test_runs_table(rec):
    df = render.runs_table([rec])
    assert df.loc[0, "run"] == "run-1" and df.loc[0, "ood result"] == 45.0 and df.loc[0, "status"] == "done"


# ------------------------------------------------------------------------------------------ issue 15: compare


def _open_class_record(run_id="r-oc"):
    cfg = {**CFG, "setting": "open_class"}
    split = {"base": 60.0, "new": 50.0, "hm": 54.5}
    ev = [{"kind": "start", "run_dir": "x", "config": cfg, "total_steps": 10, "start_step": 0,
           "splits": {"train": 100, "base": 50, "new": 60}, "classes": ["a", "b"], "device": "cpu"},
          {"kind": "eval", "step": 0, "accuracy": {"zeroshot": split, "current": split, "bma": split}, "full": False},
          {"kind": "eval", "step": 10, "accuracy": {"current": split, "bma": split}, "full": True}]
    return RunRecord.from_events(ev, run_id=run_id)


def test_compare_draws_a_run_of_another_setting_in_its_own_panels(rec):
    """Issue 15, bug 5: a run of another setting drew nothing, silently (only the first run's splits had panels)."""
    fig = figures.compare_curves([("domain shift run", rec), ("open class run", _open_class_record())])
    assert traces(fig, "open class run") and traces(fig, "domain shift run")
    assert "different settings" in fig.layout.title.text


def test_compare_names_a_run_that_draws_nothing(rec):
    failed = RunRecord.from_events([{"kind": "finish", "status": "failed", "reason": "could not load ViT-B-16",
                                     "summary": {"status": "failed", "config": {**CFG, "model": "ViT-B-16"}}}],
                                   run_id="r-bad")
    fig = figures.compare_curves([("ok", rec), ("broken", failed)])
    assert "broken: failed before its first evaluation: could not load ViT-B-16" in fig.layout.title.text
    alone = figures.compare_curves([("broken", failed)])
    assert "broken: failed" in alone.layout.annotations[0].text


def test_run_labels_say_what_differs_not_a_hash(rec):
    from app.records import run_labels

    other = RunRecord.from_events(make_events(), run_id="run-2")
    other.config = {**CFG, "lam": 0.3, "beta": 1.0, "data_options": {"colour_bias": 0.0}}
    rec.config = {**CFG, "lam": 0.1, "data_options": {"colour_bias": 0.9}}
    assert run_labels([rec, other]) == ["clipood · λ=0.1 · β=0.5 · colour shortcut 0.9",
                                        "clipood · λ=0.3 · β=1 · colour shortcut 0"]
    rec.label = "strong shortcut"
    assert run_labels([rec, other])[0] == "strong shortcut (clipood · λ=0.1 · β=0.5 · colour shortcut 0.9)"
    twin = RunRecord.from_events(make_events(), run_id="run-2abcdef")
    twin.config = dict(other.config)
    assert run_labels([other, twin]) == ["clipood · run-2", "clipood · abcdef"]  # (identical: the id tells them apart)


def test_margin_colours_are_on_a_fixed_scale_so_lambda_changes_the_picture():
    """Issue 15: the λ slider changed only the colour-bar numbers (the scale followed the data)."""
    sim = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, 0.5], [0.2, 0.5, 1.0]])
    low, high = (figures.margins(sim, ["a", "b", "c"], lam) for lam in (0.5, 1.0))
    assert low.data[0].zmax == high.data[0].zmax == pytest.approx(2.0 * 0.8)
    assert np.asarray(high.data[0].z).max() == pytest.approx(2 * np.asarray(low.data[0].z).max())


def test_every_figure_serialises_with_the_white_template(rec):
    """The look comes from plotly's default template, set once by ``app.figures`` (not copied into every layout):
    what the browser receives still carries plotly_white."""
    import json

    import plotly.io as pio

    white = pio.templates["plotly_white"].layout.plot_bgcolor
    for fig in (figures.accuracy_curves(rec), figures.loss_curve(rec), figures.empty_figure("nothing yet")):
        assert json.loads(fig.to_json())["layout"]["template"]["layout"]["plot_bgcolor"] == white
