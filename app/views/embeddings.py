"""Embeddings view: a UMAP (or PCA) map of image embeddings of a stratified sample of evaluation images under the
zero-shot weights or a run's weights, coloured by class, domain or correctness, with the class texts as stars.
Clicking a point (a small script forwards plotly's click to a hidden number box) shows its image and prediction."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import torch

from core.explore import RESULT, ZEROSHOT, eval_sample, load_images, view_classes

from .. import figures, gpu, text
from ..context import USER_ERRORS, AppContext, user_error
from ..projection import place_texts, project
from .data import DataView
from .train import TrainView

NO_RUN = "__zeroshot__"
WEIGHT_LABELS = {ZEROSHOT: "zero-shot (pre-trained)", "final": "fine-tuned (final weights)",
                 RESULT: "result (the method's output)", "bma": "BMA average", "ema": "EMA average"}


def weight_choices(names: list[str]) -> list[tuple[str, str]]:
    return [(WEIGHT_LABELS.get(n, f"average {n}"), n) for n in names]


def _probabilities(rm, feats: np.ndarray, text_f: np.ndarray) -> np.ndarray:
    logits = rm.bundle.logit_scale * torch.as_tensor(feats) @ torch.as_tensor(text_f).t()
    return logits.softmax(-1).numpy()


def build(ctx: AppContext, data: DataView, train: TrainView, browser_runs: gr.BrowserState):
    caps = ctx.caps
    gr.Markdown(text.EMB_INTRO)
    with gr.Row():
        run = gr.Dropdown([("zero-shot model of the current Data & Model choice", NO_RUN)], value=NO_RUN,
                          label="Run", scale=3, elem_id="emb-run", allow_custom_value=True)
        weights = gr.Dropdown(weight_choices([ZEROSHOT]), value=ZEROSHOT, label="Weights", scale=3,
                              elem_id="emb-weights", allow_custom_value=True)  # names are checked by RunModels
    with gr.Row():
        colour_by = gr.Radio([("class", "class"), ("domain", "domain"), ("correct / wrong", "correct")],
                             value="class", label="Colour by", scale=2, elem_id="emb-colour")
        n_points = gr.Slider(100, caps.max_embed_points, value=min(ctx.defaults.embed_points, caps.max_embed_points),
                             step=100, label="Points", scale=2)
        method = gr.Radio(["UMAP", "PCA"], value="UMAP", label="Projection", scale=1)
        pair = gr.Checkbox(value=True, label="beside zero-shot (one shared map)", scale=1, elem_id="emb-pair")
        draw_btn = gr.Button("Draw", variant="primary", scale=1, elem_id="emb-draw")
    with gr.Row(equal_height=False):
        plot = gr.Plot(label="Embedding map", elem_id="emb-plot", scale=3)
        with gr.Column(scale=1, min_width=220):
            point = gr.Textbox("", label="Selected point", visible="hidden", elem_id="emb-point")
            point_image = gr.Image(label="Selected image", height=192, interactive=False, elem_id="emb-image")
            point_info = gr.Markdown("Click a point of the map.", elem_id="emb-info")
            info = gr.Markdown(elem_id="emb-summary")
    state = gr.State(None)  # this session's map: coords, labels, predictions... (no features, no weights)

    def models_for(run_id, browser_runs_, request, model, data_values):
        if run_id and run_id != NO_RUN:
            return ctx.run_models(run_id, request, browser_runs_)
        cfg = ctx.build_config(ctx.data_choice(*data_values), model=model, method="zeroshot", steps=1,
                               batch_size=1, lr=1e-5, lam=0.0, beta=0.5, seed=0, whatif=False)
        return ctx.zeroshot_models(cfg)

    def run_changed(request: gr.Request, run_id, browser_runs_, model, *data_values):
        try:
            names = models_for(run_id, browser_runs_, request, model, data_values).available()
        except USER_ERRORS as e:
            raise user_error(e) from None
        pick = RESULT if RESULT in names else names[-1]
        return gr.update(choices=weight_choices(names), value=pick)

    def draw(request: gr.Request, run_id, weight, colour, n, proj, paired, browser_runs_, model, *data_values):
        """Embed a stratified sample under the chosen weights (and, ``paired``, under zero-shot too: one projection
        fitted on both, drawn side by side), project it to 2-D, draw it (kept per session)."""
        t0 = time.perf_counter()
        weight = weight or ZEROSHOT
        paired = bool(paired) and weight != ZEROSHOT
        try:
            rm = models_for(run_id, browser_runs_, request, model, data_values)
            keep, note = view_classes(rm.table.classes)  # many classes: the points of a sample of them
            idx = eval_sample(rm.table, int(min(n, caps.max_embed_points)), seed=0, classes=keep)
            feats = gpu.embed(rm, weight, idx)
            feats0 = gpu.embed(rm, ZEROSHOT, idx) if paired else None
        except USER_ERRORS as e:
            raise user_error(e) from None
        text_f = rm.text.cpu().numpy()
        probs = _probabilities(rm, feats, text_f)
        preds = probs.argmax(1)
        key = (run_id, getattr(rm, "cache_key", None), weight, paired, tuple(idx[:8]), len(idx))
        both = np.concatenate([feats0, feats]) if paired else feats
        coords = project(both, "umap" if proj == "UMAP" else "pca", key=key)
        coords0, coords = (coords[:len(idx)], coords[len(idx):]) if paired else (None, coords)
        tcoords = place_texts(feats, coords, text_f[keep])
        labels, doms = rm.table.labels[idx], rm.table.domain_ids[idx]
        top = np.argsort(-probs, axis=1)[:, :3]
        st = {"run": run_id, "weight": weight, "indices": idx.tolist(), "coords": coords.tolist(),
              "labels": labels.tolist(), "domains": doms.tolist(), "preds": preds.tolist(),
              "text": tcoords.tolist(), "classes": list(rm.table.classes), "domain_names": list(rm.table.domains),
              "text_names": [rm.table.classes[k] for k in keep],
              "top": [[(rm.table.classes[k], round(float(probs[i, k]) * 100, 1)) for k in row]
                      for i, row in enumerate(top)], "title": f"{WEIGHT_LABELS.get(weight, weight)} · {proj}"}
        if paired:
            preds0 = _probabilities(rm, feats0, text_f).argmax(1)
            st["zeroshot"] = {"coords": coords0.tolist(), "preds": preds0.tolist(), "title": WEIGHT_LABELS[ZEROSHOT],
                              "text": place_texts(feats0, coords0, text_f[keep]).tolist()}
        acc = 100 * float((preds == labels).mean())
        per_dom = " · ".join(f"{rm.table.domains[d]} {100 * float((preds[doms == d] == labels[doms == d]).mean()):.0f}%"
                             for d in np.unique(doms))
        summary = (f"{len(idx)} images, accuracy {acc:.1f}% ({per_dom}); computed in "
                   f"{time.perf_counter() - t0:.1f} s" + (f"; {note}" if note else ""))
        return figure(st, colour), st, summary

    def figure(st, colour):
        if st.get("zeroshot"):
            mine = {"coords": st["coords"], "preds": st["preds"], "text": st["text"],
                    "title": WEIGHT_LABELS.get(st["weight"], st["weight"])}
            return figures.embedding_pair([st["zeroshot"], mine], st["classes"], st["domain_names"],
                                          np.asarray(st["labels"]), np.asarray(st["domains"]), colour,
                                          f"{st['title']} beside zero-shot: one shared map",
                                          text_names=st.get("text_names"))
        return figures.embedding(np.asarray(st["coords"]), np.asarray(st["labels"]), np.asarray(st["domains"]),
                                 st["classes"], st["domain_names"], colour, np.asarray(st["preds"]),
                                 np.asarray(st["text"]), st["title"], text_names=st.get("text_names"))

    def recolour(st, colour):
        return figure(st, colour) if st else gr.skip()

    def show_point(request: gr.Request, i, st, browser_runs_, model, *data_values):
        """The image and prediction of point ``i`` of this session's map (``"i"`` or ``"i:nonce"``: the page adds a
        nonce so that clicking the same point twice still counts as a change)."""
        try:
            i = int(str(i).split(":", 1)[0])
        except ValueError:
            i = -1
        if not st or not 0 <= i < len(st["indices"]):
            return gr.skip(), "Click a point of the map."
        try:
            rm = models_for(st["run"], browser_runs_, request, model, data_values)
        except USER_ERRORS as e:
            raise user_error(e) from None
        img = load_images(rm.table, [st["indices"][i]])[0]
        scale = max(1, 192 // max(img.shape[:2]))
        img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
        true, pred = st["classes"][st["labels"][i]], st["classes"][st["preds"][i]]
        mark = "✓" if true == pred else "✗"
        top = ", ".join(f"{c} {p:.0f}%" for c, p in st["top"][i])
        return img, (f"**{true}** · {st['domain_names'][st['domains'][i]]}  \npredicted **{pred}** {mark}  \n"
                     f"top 3: {top}")

    extra = [browser_runs, train.model, *data.inputs]
    run.change(run_changed, [run, *extra], [weights], api_visibility="private")
    draw_btn.click(draw, [run, weights, colour_by, n_points, method, pair, *extra], [plot, state, info],
                   api_name="embeddings", concurrency_id="inspect", concurrency_limit=2)
    colour_by.change(recolour, [state, colour_by], [plot], api_visibility="private")
    point.change(show_point, [point, state, *extra], [point_image, point_info], api_name="embedding_point",
                 trigger_mode="always_last")

    def refresh(browser_runs_, request: gr.Request):
        return gr.update(choices=[("zero-shot model of the current Data & Model choice", NO_RUN)]
                         + ctx.run_choices(request, browser_runs_))

    def arrive(request: gr.Request, st, colour, n, proj, paired, browser_runs_, model, *data_values):
        """On opening the tab with nothing drawn: the latest finished run's result (else the zero-shot model)."""
        if st:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        own = ctx.own_runs(request, browser_runs_)
        latest = next((r for r in ctx.runs.visible(own) if ctx.runs.describe(r, own)[1] == "done"), None)
        run_id, weight = (latest, RESULT) if latest else (NO_RUN, ZEROSHOT)
        try:
            names = models_for(run_id, browser_runs_, request, model, data_values).available()
            out = draw(request, run_id, weight if weight in names else names[-1], colour, n, proj, paired,
                       browser_runs_, model, *data_values)
        except (gr.Error, *USER_ERRORS) as e:
            msg = e.message if isinstance(e, gr.Error) else text.studio_words(e)
            return gr.skip(), gr.skip(), figures.empty_figure(f"⚠️ {msg}", "Embeddings"), None, ""
        return (gr.update(value=run_id), gr.update(choices=weight_choices(names), value=weight), *out)

    arrive_io = ([state, colour_by, n_points, method, pair, *extra], [run, weights, plot, state, info])
    return run, refresh, (arrive, *arrive_io)
