"""Text, HTML and table outputs of a run (status line, progress bar, results table, runs table). Pure."""

from __future__ import annotations

import html

import pandas as pd

from core.reasons import word

from .records import RunRecord, model_label, split_label

# How the Studio words a run's end (core/reasons.py codes): the actions name its buttons and fields.
APP_WORDS = {"resume": "press Resume to continue from the checkpoint", "lr": "the learning rate",
             "batch_size_word": "a batch size of", "resume_option": "", "device": "device"}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(max(seconds, 0))
    return f"{s // 60:d}:{s % 60:02d}"


def progress_html(rec: RunRecord | None) -> str:
    """A progress bar with step count, speed and ETA (plain HTML; no gradio spinner over the plots)."""
    if rec is None or not rec.config:
        frac, text = 0.0, "idle" if rec is None else "preparing model and data…"
    else:
        total = max(rec.total_steps, 1)
        last = rec.steps[-1] if rec.steps else None
        step = last["step"] if last else 0
        frac = step / total if rec.total_steps else 1.0
        if rec.finish:
            text = f"{rec.finish['status']} · step {step}/{rec.total_steps}"
            if rec.summary and rec.summary.get("wall_s") is not None:
                text += f" · {_clock(rec.summary['wall_s'])} total"
        elif last:
            text = (f"step {step}/{rec.total_steps} · {last['images_per_s']:.0f} img/s · "
                    f"elapsed {_clock(last['elapsed_s'])} · ETA {_clock(last['eta_s'])}")
            cap = rec.config.get("max_seconds")
            if cap:  # a public server's wall-time cap: the run stops (resumable) when it runs out
                text += f" · time limit {_clock(cap - last['elapsed_s'])} left"
        elif rec.device:
            text = "evaluating the zero-shot model…"
        else:
            text = "loading the model and the data…"
    colour = {"failed": "#d62728", "cancelled": "#ff7f0e", "interrupted": "#ff7f0e"}.get(
        rec.status if rec else "", "#1f77b4")
    pct = max(0.0, min(frac, 1.0)) * 100
    return (f'<div class="clipood-progress" role="progressbar" aria-valuenow="{pct:.0f}" aria-valuemin="0" '
            f'aria-valuemax="100"><div class="clipood-progress-fill" style="width:{pct:.1f}%;background:{colour}">'
            f'</div><span>{html.escape(text)}</span></div>')


def status_markdown(rec: RunRecord | None, note: str = "") -> str:
    if rec is None:
        return note or "No run yet: choose settings and press **Start**."
    rid = f"`{rec.run_id}`" if rec.run_id else "(not saved)"
    head = {"running": "Running", "starting": "Starting", "done": "Finished", "cancelled": "Stopped",
            "failed": "Failed", "interrupted": "Interrupted"}[rec.status]
    parts = [f"**{head}** · run {rid}"]
    if rec.config:
        c = rec.config
        parts.append(f"{c.get('method')} on {c.get('dataset')} ({c.get('setting')}), model {c.get('model')}, "
                     f"{rec.total_steps} steps, batch {c.get('batch_size')} ({c.get('sampler') or 'pooled'}), "
                     f"recipe {c.get('recipe') or 'ours'}, seed {c.get('seed')}, "
                     f"device {rec.device or '?'}")
    if rec.finish:
        reason = word(rec.finish.get("code", ""), rec.finish.get("detail") or {}, APP_WORDS, rec.finish["reason"])
        if not rec.finish.get("code"):  # a run saved before reasons had codes
            reason = reason.replace("resume with --resume", APP_WORDS["resume"])
        parts.append(f"{'⚠️ ' if rec.status == 'failed' else ''}{reason}")
    if note:
        parts.append(note)
    return "  \n".join(parts)


def results_table(rec: RunRecord | None) -> pd.DataFrame:
    """Per split: zero-shot, final weights, the method's result and its change vs zero-shot (after the run)."""
    cols = ["split", "zero-shot", "final weights", "result", "Δ result vs zero-shot"]
    s = rec.summary if rec else None
    if not s or not s.get("zeroshot"):
        return pd.DataFrame(columns=cols)
    zs, final, result = s.get("zeroshot", {}), s.get("final") or {}, s.get("result") or {}
    rows = []
    for split in rec.split_names(main_only=False):
        z, f, r = zs.get(split), final.get(split), result.get(split)
        rows.append([split_label(split), *(None if v is None else round(v, 1) for v in (z, f, r)),
                     None if (r is None or z is None) else round(r - z, 1)])
    df = pd.DataFrame(rows, columns=cols)
    df = df.rename(columns={"result": f"result ({model_label(rec.result_model, rec.config)})"})
    return df


def runs_table(records: list[RunRecord]) -> pd.DataFrame:
    """One row per saved run: id, method, status, steps, and zero-shot / result on the main splits."""
    rows = []
    for r in records:
        s = r.summary or {}
        status = r.status if r.finish or r.summary is None else s.get("status", r.status)
        row = {"run": r.run_id, "label": r.label, "method": r.method, "dataset": r.config.get("dataset"),
               "model": r.config.get("model"), "setting": r.setting, "seed": r.config.get("seed"),
               "steps": f"{s.get('steps_done', r.step)}/{r.total_steps or r.config.get('steps')}",
               "status": "✗ failed" if status == "failed" else status}
        for split in r.split_names():
            for col, vals in (("zero-shot", s.get("zeroshot") or r.zeroshot), ("result", s.get("result") or {})):
                v = vals.get(split)
                row[f"{split} {col}"] = None if v is None else round(v, 1)
        rows.append(row)
    return pd.DataFrame(rows)
