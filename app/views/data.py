"""Data view: dataset, setting, source/target domains, base classes and the toy world's knobs; a sample grid by
domain x class, images per split, and (toy world) the colour shortcut of the training split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from core.data.registry import SCHEMES
from core.data.splits import SETTINGS, default_base_classes
from core.explore import colour_shortcut, dataset_overview, sample_mosaic
from core.split_scan import measured_checks

from .. import configure, figures, text
from ..context import USER_ERRORS, AppContext

SETTING_CHOICES = [("Domain shift", "domain_shift"), ("Open class", "open_class"), ("In the wild", "in_the_wild")]


@dataclass
class DataView:
    dataset: gr.Dropdown
    path: gr.Textbox
    upload: gr.File
    setting: gr.Radio
    sources: gr.CheckboxGroup
    targets: gr.CheckboxGroup
    base: gr.CheckboxGroup
    colour_bias: gr.Slider
    shots: gr.Slider
    eval_per: gr.Slider
    grid: gr.Plot
    counts: gr.Plot
    shortcut: gr.Plot
    message: gr.Markdown
    setting_help: gr.Markdown
    fill: Callable | None = field(default=None)  # (dataset, path, upload, setting, knobs...) -> picker updates
    preview: Callable | None = field(default=None)  # (*inputs) -> grid, counts, shortcut, message

    @property
    def inputs(self) -> list:
        """In the order of :meth:`AppContext.data_choice`."""
        return [self.dataset, self.path, self.upload, self.setting, self.sources, self.targets, self.base,
                self.colour_bias, self.shots, self.eval_per]


def overview(ctx: AppContext, choice: configure.DataChoice, seed: int = 0):
    spec = configure.dataset_spec(choice, ctx.options)
    configure.check_domains(choice)
    opts = configure.data_options(choice, ctx.options)
    split = configure.used_split(choice)
    return dataset_overview(spec, choice.setting, split["sources"], split["targets"], split["base_classes"], opts, seed)


def build(ctx: AppContext) -> DataView:
    d, caps = ctx.defaults, ctx.caps
    domains, classes, src, tgt, base_default = ctx.initial_choice()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            gr.Markdown(text.DATA_INTRO)
            dataset = gr.Dropdown(ctx.dataset_choices(ctx.options.allow_local_paths), value=d.dataset,
                                  label="Dataset", elem_id="data-dataset")
            path = gr.Textbox("", label="Folder path on the server", visible=False, placeholder="/data/my-images",
                              elem_id="data-path")
            upload = gr.File(label="Upload a zip (domain/class/image layout)", file_types=[".zip"], visible=False,
                             type="filepath", elem_id="data-upload")
            setting = gr.Radio(SETTING_CHOICES, value=d.setting, label="Setting")
            setting_help = gr.Markdown(text.SETTING_HELP[d.setting])
            sources = gr.CheckboxGroup(domains, value=src, label="Source domains (fine-tuned on)",
                                       elem_id="data-sources")
            targets = gr.CheckboxGroup(domains, value=tgt, label="Target domains (never seen in training)",
                                       elem_id="data-targets")
            base = gr.CheckboxGroup(classes, value=base_default, label="Base classes (trained on; the rest are new)",
                                    visible=d.setting != "domain_shift")
            colour_bias = gr.Slider(0, 1, value=d.colour_bias, step=0.05, label="Colour shortcut",
                                    info=text.COLOUR_BIAS_HELP, elem_id="data-colour-bias")
            shots = gr.Slider(1, caps.max_shots, value=d.shots, step=1, label="Shots", info=text.SHOTS_HELP)
            eval_per = gr.Slider(1, caps.max_eval_per, value=d.eval_per, step=1, label="Eval images per cell",
                                 info=text.EVAL_PER_HELP)
            preview_btn = gr.Button("Preview", variant="secondary", elem_id="data-preview")
            message = gr.Markdown(elem_id="data-message")
        with gr.Column(scale=2):
            grid = gr.Plot(label="One sample per domain and class", elem_id="data-grid")
            counts = gr.Plot(label="Images per split", elem_id="data-counts")
            shortcut = gr.Plot(label="Colour shortcut in the training split", elem_id="data-shortcut")
    view = DataView(dataset, path, upload, setting, sources, targets, base, colour_bias, shots, eval_per, grid, counts,
                    shortcut, message, setting_help)

    def dataset_changed(dataset, path, upload, setting, colour_bias, shots, eval_per):
        """New dataset: fill the domain and class pickers with its defaults."""
        is_scheme = dataset in SCHEMES
        toy = dataset == "toy-shapes"
        path_label = "Hugging Face dataset id (owner/name)" if dataset == "hf:" else "Folder path on the server"
        vis = [gr.update(visible=is_scheme and dataset != "zip:", label=path_label),
               gr.update(visible=dataset == "zip:"),
               gr.update(visible=toy)]
        choice = ctx.data_choice(dataset, path, upload, setting, None, None, None, colour_bias, shots, eval_per)
        try:
            ov = overview(ctx, choice)
        except USER_ERRORS as e:  # (the pickers keep what they hold: emptied, they would refuse their own values)
            return [gr.skip()] * 3 + vis + [f"⚠️ {text.studio_words(e)}"]
        t = ov.table
        return [gr.update(choices=t.domains, value=ov.splits.sources),
                gr.update(choices=t.domains,
                          value=ov.splits.targets or [x for x in t.domains if x not in ov.splits.sources]),
                gr.update(choices=t.classes, value=default_base_classes(t, setting))] + vis + [""]

    def preview(dataset, data_path, data_upload, setting, sources, targets, base_classes, colour_bias, shots,
                eval_per):
        """Sample grid, split sizes and the colour shortcut for the current choice (or a clear message)."""
        choice = ctx.data_choice(dataset, data_path, data_upload, setting, sources, targets, base_classes,
                                 colour_bias, shots, eval_per)
        try:
            ov = overview(ctx, choice)
        except USER_ERRORS as e:
            return gr.skip(), gr.skip(), gr.skip(), f"⚠️ {text.studio_words(e)}"
        order = sorted(ov.table.domains, key=lambda x: ("source", "target", "unused").index(ov.roles[x]))
        mosaic, rows, cols = sample_mosaic(ov.table, order, cell=48 if len(ov.table.classes) <= 24 else 32)
        sc = colour_shortcut(ov.table, ov.splits.train)
        shortcut_fig = (figures.colour_shortcut(sc[0], ov.table.classes, sc[1]) if sc is not None else
                        figures.empty_figure("No colour record for this dataset.", "Colour shortcut"))
        sizes = " · ".join(f"{k} {sum(v.values())}" for k, v in ov.split_domains.items())
        msg = f"{len(ov.table)} images, {len(ov.table.classes)} classes, {len(ov.table.domains)} domains · {sizes}"
        if len(cols) < len(ov.table.classes) or len(rows) < len(ov.table.domains):
            msg += f" · the grid shows {len(rows)} domains x {len(cols)} classes (a fixed sample)"
        if dataset == "toy-shapes":
            checks = measured_checks(setting, **configure.used_split(choice),
                                     data_options=configure.data_options(choice, ctx.options))
            if checks is not None:
                msg += "\n\n" + text.split_verdict(checks)
        return (figures.sample_grid(mosaic, rows, cols, ov.roles), figures.split_counts(ov.split_domains, ov.roles),
                shortcut_fig, msg)

    def setting_changed(setting):
        return (text.SETTING_HELP[setting], gr.update(visible=setting != "domain_shift"),
                gr.update(visible=setting != "open_class"))

    outs = [grid, counts, shortcut, message]
    dataset.change(dataset_changed, [dataset, path, upload, setting, colour_bias, shots, eval_per],
                   [sources, targets, base, path, upload, colour_bias, message], api_visibility="private"
                   ).then(preview, view.inputs, outs, api_visibility="private")
    setting.change(setting_changed, [setting], [setting_help, base, targets], api_visibility="private"
                   ).then(preview, view.inputs, outs, api_visibility="private")
    for comp in (sources, targets, base):
        comp.input(preview, view.inputs, outs, trigger_mode="always_last", api_visibility="private")
    for comp in (colour_bias, shots, eval_per):  # (change: a typed value as well as a dragged one)
        comp.change(preview, view.inputs, outs, trigger_mode="always_last", api_visibility="private")
    preview_btn.click(preview, view.inputs, outs, api_name="preview_data")
    upload.upload(dataset_changed, [dataset, path, upload, setting, colour_bias, shots, eval_per],
                  [sources, targets, base, path, upload, colour_bias, message], api_visibility="private"
                  ).then(preview, view.inputs, outs, api_visibility="private")
    path.submit(dataset_changed, [dataset, path, upload, setting, colour_bias, shots, eval_per],
                [sources, targets, base, path, upload, colour_bias, message], api_visibility="private"
                ).then(preview, view.inputs, outs, api_visibility="private")
    view.fill, view.preview = dataset_changed, preview
    return view


assert set(dict(SETTING_CHOICES).values()) == set(SETTINGS)
