"""Figure builders: plain records in, a plotly figure out. Pure (no gradio, no torch), so each is unit-tested.

Every figure has a constant ``layout.uirevision``: gradio renders ``gr.Plot`` with ``Plotly.react``, so a user's
zoom and pan survive the live updates of a run. Curves are kept to a few hundred points per trace.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .records import RunRecord, model_label, split_label

MODEL_COLOURS = {"zeroshot": "#7f7f7f", "current": "#d62728", "bma": "#1f77b4", "ema": "#2ca02c",
                 "wiseft": "#9467bd"}
SPLIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
QUALITATIVE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
               "#31a354", "#756bb1"]
# A horizontal legend sits at the bottom of the figure (not of the plot), below the axis titles, in a bottom margin
# grown with its rows, so it never covers "step" or "probability (%)".
BOTTOM_LEGEND = dict(orientation="h", yref="container", yanchor="bottom", y=0.0, x=0, xanchor="left")
BASE_LAYOUT = dict(margin=dict(l=50, r=20, t=50, b=40), height=360, legend=BOTTOM_LEGEND, font=dict(size=12))
# Every figure's look is plotly's "plotly_white", set once as plotly's default: serialising a figure writes the default
# template into it (about 1 ms), while naming it in each figure's layout copied and validated the whole template, 50-80
# ms a figure, twice per streamed update while the run trains on the same two cores (issue 16).
pio.templates.default = "plotly_white"


def _legend_rows(fig: go.Figure, per_row: int = 3) -> int:
    shown = {t.legendgroup or t.name for t in fig.data if t.name and t.showlegend is not False}
    return math.ceil(len(shown) / per_row)


def _layout(fig: go.Figure, title: str, revision: str, **kw) -> go.Figure:
    layout = {**BASE_LAYOUT, **kw}
    if layout["legend"] is BOTTOM_LEGEND and fig.layout.showlegend is not False:
        rows = _legend_rows(fig)
        if rows:  # axis title (about 45 px) + 22 px per legend row
            layout["margin"] = {**layout["margin"], "b": 50 + 22 * rows}
            layout["height"] = layout["height"] + 22 * rows
    fig.update_layout(**layout, title=dict(text=title, x=0.01, font=dict(size=14)), uirevision=revision)
    return fig


def _thin(xs, ys, max_points: int = 400):
    """Every k-th point (always keeping the last) so a trace stays small."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    k = math.ceil(n / max_points)
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def empty_figure(message: str, title: str = "", revision: str = "empty") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, revision)


# ------------------------------------------------------------------------------------------------------ training


def accuracy_curves(rec: RunRecord, splits: list[str] | None = None, revision: str = "acc") -> go.Figure:
    """One panel per split: zero-shot reference (dashed), fine-tuned (current) and averaged weights over steps.

    Points evaluated on different image sets never share a line. On every image (``EVERY_IMAGE``) each model is one
    line and the zero-shot reference is the full-split value. On a subsample the lines and the dashed zero-shot
    reference are that subsample (like for like) and the final full evaluations are separate diamonds labelled
    "(all images)"."""
    splits = splits or rec.split_names()
    if not splits:
        return empty_figure("Accuracy curves appear here once the run has evaluated the zero-shot model.",
                            "Accuracy per split", revision)
    fig = make_subplots(rows=1, cols=len(splits), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[split_label(s) for s in splits])
    total = max(rec.total_steps, 1)
    sub = rec.curve_images()
    for j, split in enumerate(splits, start=1):
        _zeroshot_traces(fig, rec, split, j, total, sub)
        for m in rec.live_models():
            _model_traces(fig, rec, m, split, j, sub)
    fig.update_xaxes(title_text="step", range=[-0.02 * total, total * 1.02])
    fig.update_yaxes(title_text="accuracy (%)", col=1)
    how = ("every point: all images of each split" if sub is None else
           f"lines: a fixed subsample of {sub} images per split · diamonds: all images")
    return _layout(fig, f"Accuracy per split: zero-shot vs fine-tuned vs averaged<br><sup>{how}</sup>", revision,
                   margin=dict(l=50, r=20, t=70, b=40))


def _zeroshot_traces(fig, rec: RunRecord, split: str, col: int, total: int, sub: int | None) -> None:
    _, sub_ys, _ = rec.curve("zeroshot", split)
    zs_full = rec.zeroshot.get(split)
    zs = (zs_full if zs_full is not None else (sub_ys[0] if sub_ys else None)) if sub is None else \
        (sub_ys[0] if sub_ys else None)
    if zs is not None:
        fig.add_trace(go.Scatter(x=[0, total], y=[zs, zs], mode="lines", name="zero-shot", legendgroup="zeroshot",
                                 showlegend=col == 1, line=dict(color=MODEL_COLOURS["zeroshot"], dash="dash"),
                                 hovertemplate=f"zero-shot {split}: %{{y:.1f}}%<extra></extra>"), 1, col)
    if sub is not None and zs_full is not None and rec.total_steps:
        fig.add_trace(go.Scatter(x=[total], y=[zs_full], mode="markers", name="zero-shot (all images)",
                                 legendgroup="zeroshot", showlegend=False,
                                 marker=dict(symbol="diamond-open", size=11, color=MODEL_COLOURS["zeroshot"]),
                                 hovertemplate=f"zero-shot, all images of {split}: %{{y:.1f}}%<extra></extra>"),
                      1, col)


def _model_traces(fig, rec: RunRecord, m: str, split: str, col: int, sub: int | None) -> None:
    xs, ys, full = rec.curve(m, split)
    if not xs:
        return
    colour, name = MODEL_COLOURS.get(m.split(":")[0], "#333"), model_label(m, rec.config)
    on_line = [True] * len(xs) if sub is None else [not f for f in full]
    lx, ly = [x for x, k in zip(xs, on_line) if k], [y for y, k in zip(ys, on_line) if k]
    if lx:
        fig.add_trace(go.Scatter(
            x=lx, y=ly, mode="lines+markers", name=name, legendgroup=m, showlegend=col == 1,
            line=dict(color=colour, width=2.5 if m != "current" else 2), marker=dict(size=6),
            hovertemplate=f"{name}<br>step %{{x}}: %{{y:.1f}}%<extra>{split}</extra>"), 1, col)
    fx, fy = [x for x, k in zip(xs, on_line) if not k], [y for y, k in zip(ys, on_line) if not k]
    if fx:
        fig.add_trace(go.Scatter(
            x=fx, y=fy, mode="markers", name=f"{name} (all images)", legendgroup=m, showlegend=False,
            marker=dict(symbol="diamond", size=11, color=colour),
            hovertemplate=f"{name}, all images<br>step %{{x}}: %{{y:.1f}}%<extra>{split}</extra>"), 1, col)


def loss_curve(rec: RunRecord, revision: str = "loss") -> go.Figure:
    """Training loss (and learning rate, right axis) over steps."""
    pts = [(s["step"], s["loss"]) for s in rec.steps if s.get("loss") is not None]
    if not pts:
        return empty_figure("The loss curve starts with the first training step.", "Training loss", revision)
    xs, ys = _thin([p[0] for p in pts], [p[1] for p in pts])
    lx, ly = _thin([s["step"] for s in rec.steps], [s["lr"] for s in rec.steps])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="loss", line=dict(color="#d62728"),
                             hovertemplate="step %{x}: loss %{y:.4f}<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="learning rate", line=dict(color="#aaa", dash="dot"),
                             hovertemplate="step %{x}: lr %{y:.2e}<extra></extra>"), secondary_y=True)
    fig.update_xaxes(title_text="step", range=[0, max(rec.total_steps, 1)])
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="lr", secondary_y=True, showgrid=False, tickformat=".0e")
    return _layout(fig, "Training loss (margin metric softmax when λ > 0)", revision)


def beta_schedule(schedule: dict, shares: dict, step: int, beta: float, revision: str = "beta") -> go.Figure:
    """The BMA weighting: weight of each step (the Beta density, normalised), the part already folded into the
    average (filled), the current step (vertical line), and who holds the running average now (bar)."""
    t_all = np.asarray(schedule["step"])
    w = np.asarray(schedule["weights"])
    total = int(t_all[-1]) if len(t_all) else 0
    step = int(min(max(step, 0), total))
    fig = make_subplots(rows=2, cols=1, row_heights=[0.72, 0.28], vertical_spacing=0.22,
                        subplot_titles=["weight of each step in the final average",
                                        f"who holds the running average after step {step}"])
    xs, ys = _thin(t_all.tolist(), w.tolist(), 600)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"Beta({beta:g}, {beta:g}) weights",
                             line=dict(color="#1f77b4", width=1.5),
                             hovertemplate="step %{x}: weight %{y:.4f}<extra></extra>"), 1, 1)
    done_x, done_y = _thin(t_all[: step + 1].tolist(), w[: step + 1].tolist(), 600)
    fig.add_trace(go.Scatter(x=done_x, y=done_y, mode="lines", name="folded in so far", fill="tozeroy",
                             line=dict(color="#1f77b4", width=0), fillcolor="rgba(31,119,180,0.35)",
                             hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Scatter(x=[0], y=[w[0]], mode="markers+text", name="θ₀ (zero-shot)",
                             marker=dict(color=MODEL_COLOURS["zeroshot"], size=10), text=["θ₀"],
                             textposition="top right",
                             hovertemplate="zero-shot weights θ₀: %{y:.4f}<extra></extra>"), 1, 1)
    fig.add_vline(x=step, line=dict(color="#d62728", width=2), row=1, col=1)
    fig.add_annotation(x=step, y=1, yref="y domain", text=f" step {step} ", showarrow=False,
                       xanchor="left" if step < 0.6 * total else "right", yanchor="top", font=dict(color="#d62728"),
                       row=1, col=1)
    parts = [("θ₀", "zero-shot θ₀", shares["zeroshot"], MODEL_COLOURS["zeroshot"]),
             ("between", "steps in between", shares["between"], "#9ecae1"),
             ("latest", f"latest {shares['latest_steps']} steps", shares["latest"], "#d62728")]
    for short, name, val, colour in parts:
        fig.add_trace(go.Bar(x=[100 * val], y=["share"], orientation="h", name=name, marker_color=colour,
                             text=[f"{short} {100 * val:.0f}%"], textposition="inside", insidetextanchor="middle",
                             hovertemplate=f"{name}: %{{x:.1f}}%<extra></extra>"), 2, 1)
    fig.update_layout(barmode="stack", showlegend=False)
    fig.update_xaxes(range=[-0.01 * total, total * 1.01 + 1e-9], row=1, col=1)
    fig.update_xaxes(range=[0, 100], ticksuffix="%", row=2, col=1)
    fig.update_yaxes(title_text="weight", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=2, col=1)
    return _layout(fig, f"Beta moving average schedule (β = {beta:g}, {total} steps)", revision, height=400)


def whatif(rec: RunRecord, splits: list[str] | None = None, revision: str = "whatif") -> go.Figure:
    """After a run: accuracy against the BMA's β and against WiSE-FT's α, from averages tracked on the same
    trajectory (no retraining). References: zero-shot (dotted) and the final fine-tuned weights (dashed)."""
    fe = rec.final_eval()
    pts = rec.whatif_points()
    if fe is None or (len(pts["bma"]) < 2 and len(pts["wiseft"]) < 1):
        msg = ("What-if appears when a run with 'track what-if averages' finishes."
               if fe is None or rec.status == "done" else "What-if appears when the run finishes.")
        return empty_figure(msg, "What if β (or α) had been different?", revision)
    splits = splits or rec.split_names()
    acc = fe["accuracy"]
    zs = rec.zeroshot or acc.get("zeroshot", {})
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, shared_yaxes=True,
                        subplot_titles=["BMA: accuracy vs β (log scale)", "WiSE-FT: accuracy vs α"])
    betas = [b for b, _ in pts["bma"]]
    for i, split in enumerate(splits):
        colour = SPLIT_COLOURS[i % len(SPLIT_COLOURS)]
        lbl = split_label(split)
        if pts["bma"]:
            fig.add_trace(go.Scatter(x=betas, y=[acc[n][split] for _, n in pts["bma"]], mode="lines+markers",
                                     name=f"BMA, {lbl}", line=dict(color=colour, width=2.5), legendgroup=split,
                                     hovertemplate=f"β=%{{x:g}}: %{{y:.1f}}%<extra>{lbl}</extra>"), 1, 1)
        for ref, dash, ref_name in ((zs.get(split), "dot", "zero-shot"),
                                    (acc.get("current", {}).get(split), "dash", "final weights")):
            if ref is not None and betas:
                fig.add_trace(go.Scatter(x=[min(betas), max(betas)], y=[ref, ref], mode="lines",
                                         line=dict(color=colour, dash=dash, width=1), legendgroup=split,
                                         name=f"{ref_name}, {lbl}", showlegend=False,
                                         hovertemplate=f"{ref_name}: %{{y:.1f}}%<extra>{lbl}</extra>"), 1, 1)
        for val, n in pts["ema"]:
            fig.add_trace(go.Scatter(x=[max(betas) if betas else 1], y=[acc[n][split]], mode="markers",
                                     marker=dict(symbol="square", color=colour, size=9), legendgroup=split,
                                     name=f"EMA {val:g}, {lbl}", showlegend=False,
                                     hovertemplate=f"EMA (decay {val:g}): %{{y:.1f}}%<extra>{lbl}</extra>"), 1, 1)
        alphas = [(0.0, zs.get(split))] + [(a, acc[n][split]) for a, n in pts["wiseft"]]
        if "current" in acc:
            alphas.append((1.0, acc["current"].get(split)))
        alphas = sorted((a, y) for a, y in alphas if y is not None)
        fig.add_trace(go.Scatter(x=[a for a, _ in alphas], y=[y for _, y in alphas], mode="lines+markers",
                                 name=f"WiSE-FT, {lbl}", line=dict(color=colour, width=2.5, dash="dashdot"),
                                 legendgroup=split, showlegend=False,
                                 hovertemplate=f"α=%{{x:g}}: %{{y:.1f}}%<extra>{lbl}</extra>"), 1, 2)
    beta_used = rec.config.get("beta")
    if beta_used:
        fig.add_vline(x=beta_used, line=dict(color="#999", dash="dot"), row=1, col=1)
    fig.update_xaxes(type="log", tickvals=betas, ticktext=[f"{b:g}" for b in betas],
                     title_text="β  (<1: U-shaped, keeps both ends; >1: favours the middle)", col=1)
    fig.update_xaxes(title_text="α  (0 = zero-shot, 1 = final fine-tuned)", range=[-0.03, 1.03], col=2)
    fig.update_yaxes(title_text="accuracy (%)", col=1)
    return _layout(fig, "What if β (or α) had been different? Same run, no retraining", revision, height=380)


# ---------------------------------------------------------------------------------------------------------- data


def sample_grid(mosaic: np.ndarray, rows: list[str], cols: list[str], roles: dict[str, str] | None = None,
                revision: str = "preview") -> go.Figure:
    """A mosaic of one sample per (domain, class) with domain (row) and class (column) labels; hover names a cell."""
    roles = roles or {}
    h, w = mosaic.shape[:2]
    ch, cw = h // max(len(rows), 1), w // max(len(cols), 1)
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    hover = [[f"{r} ({roles.get(r, '')}) · {c}" for c in cols] for r in rows]
    fig.add_trace(go.Heatmap(z=np.zeros((len(rows), len(cols))), x0=cw / 2 - 0.5, dx=cw, y0=ch / 2 - 0.5, dy=ch,
                             opacity=0, showscale=False, hovertext=hover, hoverinfo="text"))
    fig.update_xaxes(tickvals=[cw * (i + 0.5) - 0.5 for i in range(len(cols))], ticktext=cols, tickangle=-45,
                     side="top", showgrid=False)
    fig.update_yaxes(tickvals=[ch * (i + 0.5) - 0.5 for i in range(len(rows))],
                     ticktext=[f"{r} ({roles[r]})" if roles.get(r) else r for r in rows], showgrid=False)
    return _layout(fig, "", revision, height=max(260, 40 + int(ch * len(rows) * 1.3)),
                   margin=dict(l=120, r=10, t=90, b=10))


def split_counts(split_domains: dict[str, dict[str, int]], roles: dict[str, str] | None = None,
                 revision: str = "counts") -> go.Figure:
    """Images per split, stacked by domain (so the shift is visible: train and id from sources, ood from targets)."""
    roles = roles or {}
    domains: list[str] = []
    for d in split_domains.values():
        domains += [x for x in d if x not in domains]
    names = list(split_domains)
    fig = go.Figure()
    for i, dom in enumerate(domains):
        fig.add_trace(go.Bar(x=names, y=[split_domains[s].get(dom, 0) for s in names],
                             name=f"{dom} ({roles[dom]})" if roles.get(dom) else dom,
                             marker_color=QUALITATIVE[i % len(QUALITATIVE)],
                             hovertemplate=f"{dom}: %{{y}} images<extra>%{{x}}</extra>"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="images")
    return _layout(fig, "Images per split, by domain", revision, height=320,
                   legend=dict(orientation="v", x=1.02, y=1), margin=dict(l=50, r=20, t=50, b=60))


def colour_shortcut(matrix: np.ndarray, classes: list[str], colours: list[str],
                    revision: str = "shortcut") -> go.Figure:
    """Share of each class's training images drawn in each colour: a bright diagonal-like pattern is the shortcut
    fine-tuning can learn instead of the shape."""
    fig = go.Figure(go.Heatmap(z=np.asarray(matrix) * 100, x=colours, y=classes, colorscale="Blues", zmin=0,
                               zmax=100, colorbar=dict(title="%", ticksuffix="%"),
                               hovertemplate="%{y} drawn %{x}: %{z:.0f}%<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Training images: colour of each class (the shortcut)", revision, height=420,
                   margin=dict(l=110, r=20, t=50, b=40))


# ------------------------------------------------------------------------------------------------------- margins


def margins(similarity: np.ndarray, classes: list[str], lam: float, revision: str = "margins",
            note: str = "", lam_max: float = 2.0) -> go.Figure:
    """MMS margin matrix ``lam * (1 - cos(t_i, t_j))`` (left) beside the text similarity ``cos(t_i, t_j)`` (right).
    The margin colours are on a fixed scale, the largest margin at ``lam_max``, so the picture changes with λ."""
    sim = np.asarray(similarity, dtype=float)
    marg = lam * (1.0 - sim)
    np.fill_diagonal(marg, 0.0)
    off = 1.0 - sim[~np.eye(len(sim), dtype=bool)] if len(sim) > 1 else np.array([1.0])
    zmax = max(float(lam_max * off.max()), 1e-6)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2,
                        subplot_titles=[f"margin λ·(1 − cos) with λ = {lam:g}", "text similarity cos(tᵢ, tⱼ)"])
    fig.add_trace(go.Heatmap(z=marg, x=classes, y=classes, colorscale="Reds", zmin=0, zmax=zmax,
                             colorbar=dict(x=0.41, len=0.9, title="margin"),
                             hovertemplate="true %{y}, rival %{x}<br>margin %{z:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=sim, x=classes, y=classes, colorscale="Viridis",
                             colorbar=dict(x=1.0, len=0.9, title="cos"),
                             hovertemplate="%{y} · %{x}<br>cos %{z:.3f}<extra></extra>"), 1, 2)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-45)
    title = "Class-adaptive margins come from how far apart the class names are"
    lines = [x for x in note.split("; ") if x] if note else []  # each note on its own line under the title
    title += "".join(f"<br><sup>{x}</sup>" for x in lines)
    return _layout(fig, title, revision,
                   height=520 + 18 * len(lines), margin=dict(l=100, r=20, t=60 + 18 * len(lines), b=100))


# ---------------------------------------------------------------------------------------------------- embeddings


def embedding(coords: np.ndarray, labels: np.ndarray, domains: np.ndarray, class_names: list[str],
              domain_names: list[str], colour_by: str = "class", preds: np.ndarray | None = None,
              text_coords: np.ndarray | None = None, title: str = "", revision: str = "emb",
              text_names: list[str] | None = None) -> go.Figure:
    """2-D map of image embeddings, one trace per class, domain or correctness, plus the class text embeddings as
    labelled stars. ``customdata`` of every image point is its index into ``coords`` (for point selection)."""
    coords = np.asarray(coords, dtype=float)
    labels, domains = np.asarray(labels), np.asarray(domains)
    n = len(coords)
    correct = (np.asarray(preds) == labels) if preds is not None else np.ones(n, dtype=bool)
    if colour_by == "domain":
        groups = [(domain_names[g], domains == g) for g in range(len(domain_names))]
    elif colour_by == "correct" and preds is not None:
        groups = [("correct", correct), ("wrong", ~correct)]
    else:
        groups = [(class_names[g], labels == g) for g in range(len(class_names))]
    pred_txt = np.array([class_names[p] for p in preds]) if preds is not None else np.array([""] * n)
    hover = np.array([f"{class_names[labels[i]]} · {domain_names[domains[i]]}"
                      + (f"<br>predicted: {pred_txt[i]} {'✓' if correct[i] else '✗'}" if preds is not None else "")
                      for i in range(n)])
    fig = go.Figure()
    palette = {"correct": "#2ca02c", "wrong": "#d62728"}
    for k, (name, mask) in enumerate(groups):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        fig.add_trace(go.Scattergl(
            x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=name, customdata=idx,
            marker=dict(size=6, color=palette.get(name, QUALITATIVE[k % len(QUALITATIVE)]), opacity=0.75,
                        symbol=np.where(correct[idx], "circle", "x").tolist()),
            hovertext=hover[idx], hovertemplate="%{hovertext}<extra>#%{customdata}</extra>"))
    if text_coords is not None and len(text_coords):
        tc = np.asarray(text_coords, dtype=float)
        fig.add_trace(go.Scatter(x=tc[:, 0], y=tc[:, 1], mode="markers+text", name="class text",
                                 text=list(class_names if text_names is None else text_names),
                                 textposition="top center",
                                 marker=dict(symbol="star", size=14, color="black", line=dict(color="white", width=1)),
                                 hovertemplate="text: %{text}<extra></extra>"))
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return _layout(fig, title, revision, height=560, legend=dict(orientation="v", x=1.02, y=1),
                   margin=dict(l=10, r=10, t=50, b=10))


def embedding_pair(panels: list[dict], class_names: list[str], domain_names: list[str], labels: np.ndarray,
                   domains: np.ndarray, colour_by: str = "class", title: str = "", revision: str = "emb",
                   text_names: list[str] | None = None) -> go.Figure:
    """The same images under two sets of weights (``panels``: dicts with coords, preds, text and title), side by
    side on one shared projection (fitted on both) and the same axis ranges, so a student sees each point move.
    One legend: a class toggles in both panels; ``customdata`` is the point's index in either panel."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.03, subplot_titles=[p["title"] for p in panels])
    every = np.concatenate([np.asarray(p["coords"], dtype=float) for p in panels])
    pad = 0.05 * (every.max(0) - every.min(0) + 1e-9)
    lo, hi = every.min(0) - pad, every.max(0) + pad
    for col, p in enumerate(panels, start=1):
        one = embedding(p["coords"], labels, domains, class_names, domain_names, colour_by, np.asarray(p["preds"]),
                        np.asarray(p["text"]), text_names=text_names)
        for t in one.data:
            t.legendgroup, t.showlegend = t.name, col == 1
            fig.add_trace(t, 1, col)
        fig.update_xaxes(range=[lo[0], hi[0]], showticklabels=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(range=[lo[1], hi[1]], showticklabels=False, zeroline=False, row=1, col=col)
    return _layout(fig, title, revision, height=560, legend=dict(orientation="v", x=1.02, y=1),
                   margin=dict(l=10, r=10, t=70, b=10))


# ------------------------------------------------------------------------------------------------------- compare


def _nothing_to_draw(rec: RunRecord) -> str:
    if rec.status == "failed":
        reason = (rec.finish or {}).get("reason", "")
        return f"failed before its first evaluation{': ' + reason.splitlines()[0][:90] if reason else ''}"
    return "has no evaluation yet" if rec.status in ("running", "starting") else f"{rec.status}, no evaluation"


def compare_curves(records: list[tuple[str, RunRecord]], splits: list[str] | None = None,
                   revision: str = "compare") -> go.Figure:
    """Several runs overlaid: each run's output weights (the method's result) per split over steps, with a zero-shot
    reference per panel. Runs of different settings get the panels of every split any of them has; a run that draws
    nothing (failed before evaluating, not evaluated yet) is named with the reason instead of silently missing."""
    silent = [f"{lbl}: {_nothing_to_draw(r)}" for lbl, r in records if not (r.evals or r.zeroshot)]
    records = [(lbl, r) for lbl, r in records if r.evals or r.zeroshot]
    if not records:
        msg = "<br>".join(silent) or "Pick runs (or run the teaching pair) to overlay their curves."
        return empty_figure(msg, "Compare runs", revision)
    if splits is None:
        splits = list(dict.fromkeys(s for _, r in records for s in r.split_names()))
    fig = make_subplots(rows=1, cols=len(splits), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[split_label(s) for s in splits])
    total = max(r.total_steps for _, r in records) or 1
    for j, split in enumerate(splits, start=1):
        first = next((r for _, r in records if split in r.split_names(main_only=False)), records[0][1])
        _, sub_ys, _ = first.curve("zeroshot", split)  # the curves' own evaluation set when known (like for like)
        zs = sub_ys[0] if sub_ys else first.zeroshot.get(split)
        if zs is not None:
            fig.add_trace(go.Scatter(x=[0, total], y=[zs, zs], mode="lines", name="zero-shot", legendgroup="zs",
                                     showlegend=j == 1, line=dict(color=MODEL_COLOURS["zeroshot"], dash="dash"),
                                     hovertemplate="zero-shot: %{y:.1f}%<extra></extra>"), 1, j)
        for i, (lbl, r) in enumerate(records):
            xs, ys, _ = r.curve(r.result_model, split)
            if not xs:
                continue
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=lbl, legendgroup=lbl,
                                     showlegend=not any(t.name == lbl for t in fig.data),
                                     line=dict(color=QUALITATIVE[i % len(QUALITATIVE)], width=2.5),
                                     hovertemplate=f"{lbl}<br>step %{{x}}: %{{y:.1f}}%<extra>{split}</extra>"), 1, j)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="accuracy of each run's output (%)", col=1)
    settings = {r.setting for _, r in records}
    title = "Runs side by side (each method's output weights)"
    if len(settings) > 1:
        title += "<br><sup>runs of different settings: each draws in the panels of its own splits</sup>"
    if silent:
        title += "<br><sup>not drawn: " + "; ".join(silent) + "</sup>"
    return _layout(fig, title, revision, height=380, margin=dict(l=50, r=20, t=50 + 18 * (len(settings) > 1)
                                                                   + 18 * bool(silent), b=40))


# ---------------------------------------------------------------------------------------------------- playground


def probabilities(probs: dict[str, np.ndarray], class_names: list[str], top: int = 10,
                  revision: str = "probs") -> go.Figure:
    """Grouped horizontal bars: the probability each model gives the ``top`` most likely classes."""
    if not probs:
        return empty_figure("Pick an image and class names, then Classify.", "Class probabilities", revision)
    stacked = np.stack([np.asarray(p) for p in probs.values()])
    order = np.argsort(-stacked.max(0))[:top][::-1]
    fig = go.Figure()
    for i, (name, p) in enumerate(probs.items()):
        base = name.split(" ")[0]
        colour = MODEL_COLOURS.get(base, QUALITATIVE[i % len(QUALITATIVE)])
        fig.add_trace(go.Bar(y=[class_names[k] for k in order], x=100 * np.asarray(p)[order], orientation="h",
                             name=name, marker_color=colour,
                             hovertemplate=f"{name}<br>%{{y}}: %{{x:.1f}}%<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="probability (%)", range=[0, 100])
    height = max(300, 60 + 28 * len(order) * max(1, len(probs)) // 2)
    return _layout(fig, "Class probabilities", revision, height=height)


# ------------------------------------------------------------------------------------------------------ teaching


def teaching_bars(changes: dict[str, dict[str, float]], revision: str = "teaching") -> go.Figure:
    """The teaching comparison's answer: each method's change against zero-shot per split (points), one bar
    group per split, zero drawn as the zero-shot line."""
    if not changes:
        return empty_figure("Run the teaching comparison to see each method's change against zero-shot.",
                            "Change against zero-shot", revision)
    splits = list(dict.fromkeys(s for per in changes.values() for s in per))
    fig = go.Figure()
    for i, (method, per) in enumerate(changes.items()):
        ys = [per.get(s) for s in splits]
        fig.add_trace(go.Bar(x=[split_label(s) for s in splits], y=ys, name=method,
                             marker_color=QUALITATIVE[i % len(QUALITATIVE)],
                             text=[f"{y:+.1f}" if y is not None else "" for y in ys], textposition="outside",
                             hovertemplate=f"{method}<br>%{{x}}: %{{y:+.1f}} points<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=MODEL_COLOURS["zeroshot"], dash="dash"))
    fig.update_layout(barmode="group")
    fig.update_traces(cliponaxis=False)  # a bar's label above the plot area stays readable
    ys = [abs(y) for per in changes.values() for y in per.values()] or [1.0]
    lo = min([0.0, *(y for per in changes.values() for y in per.values())])
    fig.update_yaxes(title_text="change against zero-shot (points)", range=[lo * 1.15 - 1, max(ys) * 1.15 + 1])
    return _layout(fig, "Change against zero-shot per split (same seed, same data)", revision, height=380)
