"""A run as files to take away: its folder as a zip, its metrics as CSV, its figures as one interactive HTML page
(plotly.js inside, so it opens offline; each figure's camera button saves a PNG). Pure: no gradio."""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import plotly.io as pio

from .records import RunRecord, model_label


def run_zip(run_dir: Path, out: Path) -> Path:
    """Every regular file of the run folder (config, events, summary, checkpoints), never a symbolic link."""
    run_dir = Path(run_dir)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _dirs, files in os.walk(run_dir, followlinks=False):
            for f in sorted(files):
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink():
                    zf.write(p, Path(run_dir.name) / p.relative_to(run_dir))
    return out


def metrics_rows(rec: RunRecord) -> list[dict]:
    """Long format: one row per (step, quantity, model, split) with the image set it was measured on."""
    sub = rec.curve_images()
    rows = [{"step": s["step"], "quantity": q, "model": "", "split": "", "value": s[q], "evaluated_on": ""}
            for s in rec.steps for q in ("loss", "lr") if s.get(q) is not None]
    for e in rec.evals:
        on = "all images" if e.get("full") or sub is None else f"subsample of {sub}"
        for model, accs in e["accuracy"].items():
            rows += [{"step": e["step"], "quantity": "accuracy", "model": model_label(model, rec.config),
                      "split": split, "value": v, "evaluated_on": on} for split, v in accs.items()]
    rows += [{"step": 0, "quantity": "accuracy", "model": "zero-shot", "split": split, "value": v,
              "evaluated_on": "all images"} for split, v in rec.zeroshot.items()]
    return sorted(rows, key=lambda r: (r["step"], r["quantity"]))


def metrics_csv(rec: RunRecord, out: Path) -> Path:
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["step", "quantity", "model", "split", "value", "evaluated_on"])
        w.writeheader()
        w.writerows(metrics_rows(rec))
    return out


def figures_html(figs: dict, out: Path, title: str) -> Path:
    """The figures on one self-contained page (plotly.js included once)."""
    parts = [f"<h2>{name}</h2>" + pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False,
                                                 config={"toImageButtonOptions": {"format": "png", "scale": 2}})
             for i, (name, fig) in enumerate(figs.items())]
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                   f"<h1>{title}</h1>{''.join(parts)}</body></html>", encoding="utf-8")
    return out
