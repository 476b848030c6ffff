"""Playground: one image (uploaded or picked from the dataset), any class names, probabilities under the
zero-shot CLIP and the output weights of up to three saved runs of the same base model."""

from __future__ import annotations

import base64

import gradio as gr
import numpy as np

from core.data.images import ALLOWED_FORMATS, BadImage, decode_image
from core.data.pipeline import ImagePipeline
from core.explore import RESULT, base_model, load_images, text_features, unseen_class_words, view_classes
from core.playground import parse_class_names

from .. import figures, gpu, text
from ..context import USER_ERRORS, AppContext, user_error
from .data import DataView, overview
from .train import TrainView


def bounded_upload(image: gr.Image) -> gr.Image:
    """``image`` with its upload decoded by core's decoder: reduced while decoding (a 13,000² PNG is not decoded to
    500 MB) and a file that is not an image named in the message, not gradio's generic error. (An instance override:
    a ``gr.Image`` subclass would make gradio write a ``.pyi`` stub next to this file at import.)"""

    def preprocess(payload):
        if payload is None:
            return None
        name = getattr(payload, "orig_name", None) or "the uploaded file"
        try:
            url = getattr(payload, "url", None) or ""
            src = base64.b64decode(url.split(",", 1)[1]) if url.startswith("data:") else payload.path
            return np.asarray(decode_image(src, name))
        except (BadImage, ValueError, TypeError, IndexError) as e:
            why = e.why if isinstance(e, BadImage) else f"cannot be read; upload a {', '.join(ALLOWED_FORMATS)} image"
            raise gr.Error(f"Image: {name}: {why}", print_exception=False) from None

    image.preprocess = preprocess
    return image


def build(ctx: AppContext, data: DataView, train: TrainView, browser_runs: gr.BrowserState):
    gr.Markdown(text.PLAYGROUND_INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            image = bounded_upload(gr.Image(type="numpy", label="Image", height=220, image_mode="RGB",
                                            elem_id="pg-image", sources=["upload", "clipboard"]))
            with gr.Row():
                domain = gr.Dropdown([], label="Domain", scale=2, elem_id="pg-domain", allow_custom_value=True)
                pick_btn = gr.Button("Random dataset image", scale=1, size="sm", elem_id="pg-pick")
            classes = gr.Textbox(label="Class names (comma-separated; empty = the dataset's classes)", lines=2,
                                 elem_id="pg-classes")
            runs = gr.Dropdown([], multiselect=True, max_choices=3, label="Runs (their output weights)",
                               allow_custom_value=True,  # ids are checked by the run index
                               elem_id="pg-runs")
            go_btn = gr.Button("Classify", variant="primary", elem_id="pg-go")
        with gr.Column(scale=2):
            plot = gr.Plot(figures.probabilities({}, []), label="Probabilities", elem_id="pg-plot")
            message = gr.Markdown(elem_id="pg-message")

    def pick(domain_name, *data_values):
        """A random evaluation image of the chosen domain (any domain if none is chosen)."""
        try:
            t = overview(ctx, ctx.data_choice(*data_values)).table
        except USER_ERRORS as e:
            raise user_error(e) from None
        rng = np.random.default_rng()
        mask = t.is_test & ((t.domain_ids == t.domains.index(domain_name)) if domain_name in t.domains else True)
        i = int(rng.choice(np.flatnonzero(mask)))
        img = load_images(t, [i])[0]
        k = max(1, 192 // max(img.shape[:2]))  # small images shown larger (nearest neighbour)
        return (np.repeat(np.repeat(img, k, axis=0), k, axis=1),
                f"Picked a **{t.classes[t.labels[i]]}** from **{t.domains[t.domain_ids[i]]}**.")

    def classify(request: gr.Request, img, classes_text, run_ids, browser_runs_, model, *data_values):
        """Probabilities of the typed classes under zero-shot and each chosen run's output weights."""
        if img is None:  # (at once, before any model loads; a refused upload leaves no image either)
            raise gr.Error("Image: upload an image (JPEG, PNG...) or press Random dataset image first.",
                           print_exception=False)
        try:
            table = overview(ctx, ctx.data_choice(*data_values)).table
            note = ""
            if (classes_text or "").strip():
                names = parse_class_names(classes_text)
            else:
                keep, note = view_classes(table.classes)
                names = [table.classes[i] for i in keep]
            rms = [ctx.run_models(r, request, browser_runs_) for r in (run_ids or [])]
            bases = {(rm.config.model, rm.config.pretrained) for rm in rms}
            if len(bases) > 1:
                raise ValueError("the chosen runs fine-tune different base models; pick runs of one model")
            bundle = rms[0].bundle if rms else base_model(model)
            visuals = {"zero-shot": bundle.model.visual}
            for rm in rms:
                w = RESULT if RESULT in rm.available() else rm.available()[-1]
                visuals[f"{rm.config.method} · {rm.store.dir.name[-6:]}"] = rm.visual(w)
            templates = rms[0].table.templates if rms else table.templates
            tf = text_features(bundle, names, templates)
            pipeline = ImagePipeline(bundle.image_size, bundle.mean, bundle.std)
            probs = gpu.classify(visuals, pipeline, img, tf, bundle.logit_scale)
        except USER_ERRORS as e:
            raise user_error(e) from None
        best = {k: names[int(np.argmax(p))] for k, p in probs.items()}
        msg = " · ".join(f"{k}: **{v}**" for k, v in best.items())
        base = rms[0].config.model if rms else model
        warn = text.unseen_warning(base, unseen_class_words(base, names))
        msg += f"  \n{warn}" if warn else ""
        return figures.probabilities(probs, names), msg + (f"  \n({note}; type class names to choose)" if note else "")

    def refresh(request: gr.Request, browser_runs_, *data_values):
        try:
            domains = overview(ctx, ctx.data_choice(*data_values)).table.domains
        except USER_ERRORS:
            domains = []
        return gr.update(choices=ctx.run_choices(request, browser_runs_)), gr.update(choices=domains)

    pick_btn.click(pick, [domain, *data.inputs], [image, message], api_name="playground_pick")
    go_btn.click(classify, [image, classes, runs, browser_runs, train.model, *data.inputs], [plot, message],
                 api_name="playground", concurrency_id="inspect", concurrency_limit=2)
    return (runs, domain), refresh
