"""What every view shares: the server's options, the run index, the per-session registry, small read-only caches,
and the form -> run-config translation. Created once per app by :func:`app.ui.build_app`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from core.config import defaults_for
from core.data import quota as cache_quota
from core.data.registry import DATASETS, SCHEMES, list_datasets
from core.data.splits import default_base_classes
from core.data.table import DatasetError
from core.evaluator import zeroshot_key
from core.explore import RunModels, dataset_overview
from core.models import MODELS, ModelLoadError

from . import configure
from .options import AppOptions
from .records import RunRecord
from .runs import RunAccessError, RunIndex
from .session import Sessions

log = logging.getLogger("clipood.app")


def user_error(e: Exception) -> gr.Error:
    """A one-line modal for a problem the user can fix (never a traceback)."""
    from .text import studio_words

    return gr.Error(studio_words(e), print_exception=False)


# How run lists mark a run that did not finish well (every list: Train, Embeddings, Compare, Playground).
STATUS_MARKS = {"failed": "✗ FAILED · ", "cancelled": "⏸ ", "interrupted": "⏸ "}

USER_ERRORS = (configure.FormError, DatasetError, ModelLoadError, RunAccessError, ValueError, KeyError)


class AppContext:
    def __init__(self, options: AppOptions):
        self.options = options
        self.caps = options.caps
        self.defaults = options.defaults
        self.sessions = Sessions()
        quota = None if self.caps.max_runs_gb is None else int(self.caps.max_runs_gb * 1e9)
        if self.caps.max_cache_gb is not None:
            cache_quota.set_quota(int(self.caps.max_cache_gb * 1e9))
        self.disk_users = [cache_quota.usage]  # counted with the runs folder against its quota (+ gradio's uploads)
        self.runs = RunIndex(options.runs_dir, shared=options.shared_runs, max_bytes=quota,
                             active=self.sessions.active_runs, extra_bytes=self.other_disk_bytes)
        self._models: OrderedDict[tuple, RunModels] = OrderedDict()
        self._models_lock = threading.Lock()
        self.browser_secret = self._secret()
        self._initial: tuple | None = None

    def other_disk_bytes(self) -> int:
        """Disk this app uses outside the runs folder (caches, uploads): part of the runs quota on a Space."""
        return sum(f() for f in self.disk_users)

    def _secret(self) -> str:
        """A stable secret for the browser-stored run list, so it survives an app restart."""
        p = self.runs.root / ".browser-state-secret"
        try:
            if not p.is_file():
                p.write_text(secrets.token_hex(16))
                p.chmod(0o600)
            return p.read_text().strip()
        except OSError:
            return secrets.token_hex(16)

    # -- choices -------------------------------------------------------------------------------------------------
    @staticmethod
    def dataset_choices(allow_local: bool) -> list[tuple[str, str]]:
        list_datasets()
        worlds = [(f"{e.name} — {e.description}", e.name) for e in DATASETS.values() if e.kind == "world"]
        hub = [(f"{e.name} — {e.description}", e.name) for e in DATASETS.values() if e.kind != "world"]
        schemes = [(f"{p}… — {e.description}", p) for p, e in SCHEMES.items() if allow_local or p != "folder:"]
        return worlds + hub + schemes

    @staticmethod
    def model_choices() -> list[tuple[str, str]]:
        return [(f"{m.name} — {m.description}", m.name) for m in MODELS.values()]

    @staticmethod
    def hparams_for(model: str, dataset: str = "toy-shapes", setting: str = "domain_shift") -> dict:
        """Core's defaults for this run (``core.config.defaults_for``): the form never keeps its own copy."""
        return defaults_for(dataset, model, setting)

    # -- sessions and runs ---------------------------------------------------------------------------------------
    def token(self, run_id: str) -> str:
        """What a browser keeps of a run it started: the id signed with the server's secret, so a page can only
        claim runs it was given (a forged or copied-in id is ignored)."""
        mac = hmac.new(self.browser_secret.encode(), run_id.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{run_id}~{mac}"

    def verified(self, tokens: list | None) -> list[str]:
        out = []
        for t in tokens or []:
            if isinstance(t, str) and t.isascii() and "~" in t:  # (run ids are ASCII; compare_digest needs it)
                rid = t.rsplit("~", 1)[0]
                if hmac.compare_digest(self.token(rid), t):
                    out.append(rid)
        return out

    def remember(self, tokens: list | None, run_id: str, keep: int = 50) -> list[str]:
        """The browser's run list with ``run_id`` added last (bounded)."""
        tok = self.token(run_id)
        return ([t for t in (tokens or []) if isinstance(t, str) and t != tok] + [tok])[-keep:]

    def own_runs(self, request: gr.Request | None, browser_runs: list | None = None) -> list[str]:
        """Runs of this session plus those the browser proves it started (signed tokens)."""
        sess = self.sessions.get(getattr(request, "session_hash", None))
        return list(dict.fromkeys(sess.runs + self.verified(browser_runs)))

    def run_choices(self, request: gr.Request | None, browser_runs: list | None = None) -> list[tuple[str, str]]:
        out = []
        own = self.own_runs(request, browser_runs)
        for rid in self.runs.visible(own)[:200]:
            try:
                method, status = self.runs.describe(rid, own)
            except (RunAccessError, OSError, ValueError):
                continue
            label = self.runs.label(rid, own)
            mark = STATUS_MARKS.get(status, "")
            out.append((f"{mark}{rid} · {method}{f' · “{label}”' if label else ''} · {status}", rid))
        return out

    def record(self, run_id: str, request: gr.Request | None, browser_runs: list | None = None) -> RunRecord:
        return self.runs.record(run_id, self.own_runs(request, browser_runs))

    def record_and_dir(self, run_id: str, request: gr.Request | None,
                       browser_runs: list | None = None) -> tuple[RunRecord, Path]:
        """A run's record and its folder (resume and export need both; access checked once)."""
        own = self.own_runs(request, browser_runs)
        return self.runs.record(run_id, own), self.runs.path(run_id, own)

    def run_models(self, run_id: str, request: gr.Request | None, browser_runs: list | None = None) -> RunModels:
        """A run's models and data (cached per run and checkpoint version; access checked first)."""
        path = self.runs.path(run_id, self.own_runs(request, browser_runs))
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted((path / "checkpoints").glob("*.safetensors")))
        key = (run_id, stamp)
        with self._models_lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        return self._remember(key, RunModels.open(path))

    def zeroshot_models(self, cfg) -> RunModels:
        key = ("zeroshot",) + zeroshot_key(cfg.to_dict())  # core's one key for what zero-shot depends on
        with self._models_lock:
            if key in self._models:
                return self._models[key]
        return self._remember(key, RunModels(cfg))

    def _remember(self, key, rm: RunModels) -> RunModels:
        """Keep the 4 most recently used model sets (LRU)."""
        rm.cache_key = key
        with self._models_lock:
            self._models[key] = rm
            while len(self._models) > 4:
                self._models.popitem(last=False)
        return rm

    # -- forms ---------------------------------------------------------------------------------------------------
    def data_choice(self, dataset, path, upload, setting, sources, targets, base, colour_bias, shots,
                    eval_per) -> configure.DataChoice:
        uploaded = dataset == "zip:" and bool(upload)
        p = upload if uploaded else (path or "")

        def listed(x):  # None = "the dataset's default"; [] = the user unticked everything
            return None if x is None else list(x)

        return configure.DataChoice(dataset=dataset, path=str(p), uploaded=uploaded, setting=setting,
                                    sources=listed(sources), targets=listed(targets), base_classes=listed(base),
                                    colour_bias=colour_bias, shots=shots, eval_per=eval_per)

    def build_config(self, data: configure.DataChoice, **train) -> object:
        return configure.build_config(data, opts=self.options, **train)

    def initial_choice(self) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
        """Domains, classes, default sources, targets and base classes of the default dataset: what the form (and
        so the API) starts from. Opened with one image per cell: only the names matter here."""
        if self._initial is None:
            d = self.defaults
            try:
                ov = dataset_overview(d.dataset, d.setting, data_options={"colour_bias": d.colour_bias, "shots": 1,
                                                                          "eval_per": 1})
                t = ov.table
                self._initial = (t.domains, t.classes, ov.splits.sources, ov.splits.targets,
                                 default_base_classes(t, d.setting))
            except USER_ERRORS:
                self._initial = ([], [], [], [], [])
        return self._initial

    def default_config(self):
        """The run config of the untouched form (what Start does on first load)."""
        d = self.defaults
        _, _, src, tgt, _ = self.initial_choice()
        data = configure.DataChoice(dataset=d.dataset, setting=d.setting, colour_bias=d.colour_bias, shots=d.shots,
                                    eval_per=d.eval_per, sources=src or None, targets=tgt or None)
        return configure.build_config(data, model=d.model, method=d.method, steps=d.steps, batch_size=d.batch_size,
                                      lr=d.lr, lam=d.lam, beta=d.beta, seed=d.seed,
                                      whatif=d.whatif, opts=self.options)

