"""A run as the Studio sees it: the engine's event dicts folded into one record (live or read back from disk).

The same :class:`RunRecord` feeds the live view while a run streams and every view of a saved run, so what a user
sees after a page reload is exactly what they saw live. Pure Python: no gradio, no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from core.averages import parse_spec
from core.config import RunConfig, resolve
from core.methods import METHODS
from core.step import result_key

MAIN_SPLITS = {"domain_shift": ["id", "ood"], "open_class": ["base", "new", "hm"],
               "in_the_wild": ["id", "ood_base", "ood_new", "total", "hm"]}
SPLIT_LABELS = {"id": "in-distribution (sources)", "ood": "out-of-distribution (targets)", "base": "base classes",
                "new": "new classes", "hm": "harmonic mean", "ood_base": "targets, base classes",
                "ood_new": "targets, new classes", "total": "targets, all classes"}


def split_label(name: str) -> str:
    if name.startswith("ood/"):
        return f"target: {name[4:]}"
    return SPLIT_LABELS.get(name, name)


def parse_average(name: str, config: dict) -> tuple[str, float]:
    """(kind, parameter) of an average's name, as core reads it (``core.averages.parse_spec``; ValueError if it is
    not an average); a run config without the parameter (an old run) gives NaN rather than an error."""
    params = {k: float("nan") if config.get(k) is None else config[k] for k in ("beta", "ema_decay", "wiseft_alpha")}
    spec = parse_spec(name, params)
    return spec.kind, spec.value


def model_label(name: str, config: dict | None = None) -> str:
    config = config or {}
    if name == "zeroshot":
        return "zero-shot"
    if name == "current":
        return "fine-tuned (current weights)"
    try:
        kind, val = parse_average(name, config)
    except ValueError:
        return name
    return {"bma": f"BMA β={val:g}", "ema": f"EMA decay={val:g}", "wiseft": f"WiSE-FT α={val:g}"}[kind]


@dataclass
class RunRecord:
    """Everything a view needs about one run, folded from its events."""

    run_id: str | None = None
    config: dict = field(default_factory=dict)
    total_steps: int = 0
    classes: list[str] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)
    device: str = ""
    steps: list[dict] = field(default_factory=list)  # StepEvent dicts
    evals: list[dict] = field(default_factory=list)  # EvalEvent dicts without the full zero-shot one
    zeroshot: dict[str, float] = field(default_factory=dict)  # full-split zero-shot accuracy
    finish: dict | None = None
    summary: dict | None = None
    checkpoints: int = 0
    last_checkpoint_step: int = 0
    label: str = ""  # the user's name for the run (Compare view), "" when none

    @classmethod
    def from_events(cls, events: list[dict], run_id: str | None = None, summary: dict | None = None) -> RunRecord:
        r = cls(run_id=run_id)
        for ev in events:
            r.add(ev)
        if summary is not None and r.summary is None:
            r.summary = summary
            r.config = r.config or summary.get("config", {})
        return r

    def add(self, ev: dict) -> None:
        kind = ev.get("kind")
        if kind == "start":
            self.config = ev["config"]
            self.total_steps = int(ev["total_steps"])
            self.classes = list(ev["classes"])
            self.split_sizes = dict(ev["splits"])
            self.device = ev.get("device", "")
            self.finish = None  # a resumed run starts again
            if ev.get("start_step"):
                self.steps = [s for s in self.steps if s["step"] <= ev["start_step"]]
                self.evals = [e for e in self.evals if e["step"] <= ev["start_step"]]
        elif kind == "step":
            self.steps.append(ev)
        elif kind == "eval":
            if ev["step"] == 0 and ev["full"] and set(ev["accuracy"]) == {"zeroshot"}:
                self.zeroshot = dict(ev["accuracy"]["zeroshot"])
            else:
                self.evals.append(ev)
        elif kind == "checkpoint":
            self.checkpoints += 1
            if not str(ev.get("path", "")).endswith("result.safetensors"):
                self.last_checkpoint_step = int(ev["step"])
        elif kind == "finish":
            self.finish = {"status": ev["status"], "reason": ev["reason"], "code": ev.get("code", ""),
                           "detail": ev.get("detail") or {}}
            self.summary = ev.get("summary") or self.summary

    # -- derived ---------------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.finish["status"] if self.finish else ("running" if self.config else "starting")

    @property
    def method(self) -> str:
        return self.config.get("method", "")

    @property
    def setting(self) -> str:
        return self.config.get("setting", "domain_shift")

    @property
    def step(self) -> int:
        return self.steps[-1]["step"] if self.steps else 0

    @property
    def result_model(self) -> str:
        """The evaluated model that is this method's result (core's ``result_key``; zero-shot for zero-shot)."""
        method = METHODS.get(self.method)
        return result_key(method.result if method else "last") or "zeroshot"

    def split_names(self, main_only: bool = True) -> list[str]:
        names = list(self.zeroshot or (self.evals[0]["accuracy"].get("zeroshot", {}) if self.evals else {}))
        if not names:
            names = [n for n in self.split_sizes if n != "train"]
        if main_only:
            main = [s for s in MAIN_SPLITS.get(self.setting, []) if s in names]
            return main or names
        return names

    def live_models(self) -> list[str]:
        """Models drawn as live curves: the current weights, the BMA and the method's own output if different
        (what-if variants are left to the what-if plot)."""
        wanted = ["current", "bma", self.result_model]
        present = {m for e in self.evals for m in e["accuracy"]}
        return [m for m in dict.fromkeys(wanted) if m in present and m != "zeroshot"]

    def curve_images(self) -> int | None:
        """Images per split behind an intermediate curve point: None when they are every image of each split (the
        same set as the final evaluation), else the subsample size."""
        sub = (self.config or {}).get("eval_subsample")
        sizes = [n for k, n in self.split_sizes.items() if k != "train"]
        if sub is None:
            return None
        return int(sub) if not sizes or sub < max(sizes) else None

    def final_eval(self) -> dict | None:
        """The full evaluation after the last step (None until the run is done)."""
        for e in reversed(self.evals):
            if e["full"] and e["step"] == self.total_steps and self.total_steps > 0:
                return e
        return None

    def curve(self, model: str, split: str) -> tuple[list[int], list[float], list[bool]]:
        xs, ys, full = [], [], []
        for e in self.evals:
            acc = e["accuracy"].get(model)
            if acc is not None and split in acc:
                xs.append(e["step"])
                ys.append(acc[split])
                full.append(bool(e["full"]))
        return xs, ys, full

    def whatif_points(self) -> dict[str, list[tuple[float, str]]]:
        """From the final evaluation: {"bma": [(beta, model name)...], "wiseft": [(alpha, name)...], "ema": [...]},
        sorted by parameter; empty lists when the run tracked no such average."""
        fe = self.final_eval()
        out: dict[str, list[tuple[float, str]]] = {"bma": [], "wiseft": [], "ema": []}
        if fe is None:
            return out
        for name in fe["accuracy"]:
            if name in ("zeroshot", "current"):
                continue
            try:
                kind, val = parse_average(name, self.config)
            except ValueError:
                continue
            out[kind].append((val, name))
        for v in out.values():
            v.sort()
        return out


# What can tell runs apart, in the order a legend names it: (config key or data option, how it is written).
DIFF_KEYS = [("method", "{}"), ("lam", "λ={:g}"), ("beta", "β={:g}"), ("lr", "lr={:g}"), ("steps", "{} steps"),
             ("batch_size", "batch {}"), ("seed", "seed {}"), ("model", "{}"), ("dataset", "{}"), ("setting", "{}"),
             ("colour_bias", "colour shortcut {:g}"), ("shots", "{} shots"), ("eval_per", "eval {}/cell")]


def _config_value(rec: RunRecord, key: str):
    c = rec.config or {}
    return c.get(key, (c.get("data_options") or {}).get(key))


def run_labels(records: list[RunRecord]) -> list[str]:
    """A legend name per run: its label (if the user gave one) and what differs between these runs (method, λ, β,
    knobs...); the method alone when nothing else differs; the end of the run id when even that is equal."""
    keys = [(k, fmt) for k, fmt in DIFF_KEYS
            if k == "method" or len({repr(_config_value(r, k)) for r in records}) > 1]
    out = []
    for r in records:
        parts = []
        for k, fmt in keys:
            v = _config_value(r, k)
            if v is not None:
                try:
                    parts.append(fmt.format(v))
                except (ValueError, TypeError):
                    parts.append(f"{k}={v}")
        desc = " · ".join(parts)
        out.append(f"{r.label} ({desc})" if r.label else desc)
    twins = {lbl for lbl in out if out.count(lbl) > 1}
    return [f"{lbl} · {(r.run_id or '?')[-6:]}" if lbl in twins else lbl for lbl, r in zip(out, records)]


# The teaching comparison (Compare view): its two runs and the averages each keeps, only what the bars read (every
# extra average is one more pass over the evaluation grid at the end; CLIPood's own BMA is its result); then each
# bar's run and where its accuracy sits in that run's summary.
TEACHING_TRACKS = {"finetune": ("wiseft",), "clipood": ("bma",)}
TEACHING_METHODS = (("fine-tune", "finetune", ("final",)), ("WiSE-FT", "finetune", ("tracked", "wiseft")),
                    ("CLIPood", "clipood", ("result",)))


def teaching_configs(base: RunConfig, seed: int) -> list[RunConfig]:
    """The teaching comparison's runs, in order: each :data:`TEACHING_TRACKS` method on ``base`` with one seed, its
    own default lam, and no intermediate evaluations (the comparison is its end points, the bars, and each curve
    point would cost two passes over the evaluation grid per run: issue 16, the pair within 45 s on 2 cores)."""
    one = dataclasses.replace(base, seed=int(seed), eval_every=0)
    return [resolve(dataclasses.replace(one, method=m, lam=None, track=list(t))) for m, t in TEACHING_TRACKS.items()]


def teaching_changes(runs: dict[str, RunRecord]) -> dict[str, dict[str, float]]:
    """Each teaching method's change against zero-shot per main split, in points, from the finished runs'
    summaries (``runs``: method -> record); a method whose run did not finish is left out."""
    out: dict[str, dict[str, float]] = {}
    for label, method, path in TEACHING_METHODS:
        rec = runs.get(method)
        if rec is None or rec.status != "done" or not rec.summary:
            continue
        acc = rec.summary
        for key in path:
            acc = (acc or {}).get(key)
        if not acc:
            continue
        zs = rec.summary.get("zeroshot") or rec.zeroshot
        out[label] = {split: round(acc[split] - zs[split], 2) for split in rec.split_names() if split in acc}
    return out
