"""The repository is a Hugging Face Space as pushed (issue 16): README's front matter agrees with requirements.txt,
every module the app imports is a listed distribution, the weights and images are LFS files for the Hub and plain
files without git-lfs, ``SYSTEM=spaces python app.py`` serves the public defaults, and on ZeroGPU every GPU-bound call
goes through ``spaces.GPU`` (a stand-in package in ``tests/stubs``) and gives the same results on a CPU."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
STUBS = Path(__file__).resolve().parent / "stubs"
HUB_FILE_LIMIT = 10 * 1024 * 1024  # the Hub refuses larger files that are not LFS/Xet
OPTIONAL = {"spaces"}  # imported under `except ImportError`: the app runs without it


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """The ``key: value`` lines between the leading ``---`` lines (the Space header) and the text after them."""
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, "README.md does not start with a --- front matter block"
    meta = {}
    for line in m.group(1).splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip().strip('"').strip("'")
    return meta, text[m.end():]


def requirements() -> dict[str, str]:
    """Distribution name (normalised) -> the full requirement line of requirements.txt."""
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out[_norm(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0])] = line
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_front_matter_matches_requirements_and_the_interpreter():
    meta, rest = front_matter((ROOT / "README.md").read_text())
    gradio_pin = requirements()["gradio"]
    assert meta["sdk"] == "gradio" and gradio_pin == f"gradio=={meta['sdk_version']}", (meta, gradio_pin)
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["python_version"].split(".")[:2] == [str(v) for v in sys.version_info[:2]], meta["python_version"]
    assert meta["title"] and meta["emoji"] and 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    # the README still opens with its two set-up commands
    first_block = rest.split("```bash\n", 1)[1].split("```", 1)[0]
    assert rest.lstrip("\n").startswith("# CLIPood Studio") and "pip install -r requirements.txt" in first_block \
        and "bash scripts/test.sh" in first_block


def test_requirements_are_pinned():
    loose = [line for line in requirements().values() if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+]+", line)]
    assert not loose, f"not pinned: {loose}"


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level modules ``path`` imports: (required, optional = imported in a try that catches ImportError)."""
    tree = ast.parse(path.read_text())
    optional_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                h.type is not None and any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                                           for n in ast.walk(h.type)) for h in node.handlers):
            optional_nodes |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    required, optional = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            (optional if id(node) in optional_nodes else required).add(name.split(".")[0])
    return required, optional


def test_every_module_the_app_imports_is_a_listed_distribution():
    files = [ROOT / "app.py", *(ROOT / "app").rglob("*.py"), *(ROOT / "core").rglob("*.py")]
    required, optional = set(), set()
    for f in files:
        r, o = _imports(f)
        required |= r
        optional |= o
    own = {"app", "core"}
    third = sorted(m for m in required - own if m not in sys.stdlib_module_names)
    listed, dists = requirements(), md.packages_distributions()
    missing = {m: dists.get(m) for m in third if not any(_norm(d) in listed for d in dists.get(m, []))}
    assert not missing, f"imported but not in requirements.txt (module: installed distribution): {missing}"
    assert "pandas" in third and "gradio" in third  # the scan sees the app's imports
    assert optional - own - set(sys.stdlib_module_names) == OPTIONAL, optional


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="needs the git checkout")
def test_big_and_binary_files_are_lfs_for_the_hub_and_plain_files_without_git_lfs(tmp_path):
    files = _tracked()
    big = [p for p in files if p.is_file() and p.stat().st_size > HUB_FILE_LIMIT]
    images = [p for p in files if p.suffix == ".png"]
    weights = ROOT / "assets/models/toy-clip/open_clip_model.safetensors"
    assert weights in big and len(images) >= 7
    rel = [str(p.relative_to(ROOT)) for p in big + images]
    attrs = subprocess.run(["git", "check-attr", "filter", "--", *rel], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert all(line.endswith(": filter: lfs") for line in attrs) and len(attrs) == len(rel), attrs
    # a plain clone (no git-lfs here, as on CI) checks the committed bytes out, and nothing shows as modified
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}  # no user's lfs filter config
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp_path / "clone")], check=True, env=env)
    clone = tmp_path / "clone"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, env=env,
                            check=True).stdout
    assert status == ""
    head = subprocess.run(["git", "show", f"HEAD:{weights.relative_to(ROOT)}"], cwd=ROOT, capture_output=True,
                          check=True).stdout
    got = (clone / weights.relative_to(ROOT)).read_bytes()
    assert len(got) > HUB_FILE_LIMIT and hashlib.sha256(got).digest() == hashlib.sha256(head).digest()


def test_space_mode_app_serves_the_public_defaults(tmp_path):
    """``SYSTEM=spaces python app.py`` as a Space starts it: private runs, no server paths, a Space's quotas."""
    gradio_client = pytest.importorskip("gradio_client")
    from studio import free_port

    port = free_port()
    env = {**os.environ, "SYSTEM": "spaces", "GRADIO_SERVER_PORT": str(port), "CLIPOOD_RUNS_DIR": str(tmp_path / "r"),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("SPACES_ZERO_GPU", None)
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, client = time.monotonic() + 240, None
        while client is None:
            assert proc.poll() is None, f"app.py exited ({proc.returncode}): {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no server after 240 s: {log.read_text()[-2000:]}"
            try:
                client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                time.sleep(1)
        line = next(s for s in log.read_text().splitlines() if s.startswith("CLIPood Studio options: "))
        opts = json.loads(line.split(": ", 1)[1])
        from app.options import SPACE_CAPS

        assert opts["space"] and opts["private_runs"] and not opts["allow_local_paths"]
        assert opts["runs_dir"] == str(tmp_path / "r")
        assert {k: opts["caps"][k] for k in SPACE_CAPS} == SPACE_CAPS
        with pytest.raises(Exception, match="folder: is not in the list of choices"):  # not even offered
            client.predict("folder:", str(ROOT), None, "domain_shift", ["photo"], ["sketch"], [], 0.9, 4, 3,
                           api_name="/preview_data")
        said = client.predict("zip:", str(ROOT / "data.zip"), None, "domain_shift", ["photo"], ["sketch"], [], 0.9,
                              4, 3, api_name="/preview_data")[3]
        assert "paths of files on this server are disabled here" in said, said
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---- ZeroGPU, against the stand-in `spaces` package --------------------------------------------------------------

@pytest.fixture
def zero_gpu(monkeypatch):
    """app.gpu as imported on a ZeroGPU Space (SPACES_ZERO_GPU=true, `spaces` importable: the stand-in)."""
    import app.gpu as gpu

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.syspath_prepend(str(STUBS))
    sys.modules.pop("spaces", None)
    import spaces

    spaces.DECORATED.clear()
    spaces.CALLS.clear()
    try:
        yield importlib.reload(gpu), spaces
    finally:
        monkeypatch.undo()
        sys.modules.pop("spaces", None)
        importlib.reload(gpu)


def _outcome(evs) -> list:
    """What a run showed, without its clocks and paths: kinds, losses, accuracies, final status."""
    out = []
    for e in evs:
        if e.kind == "step":
            out.append(("step", e.step, round(e.loss, 6) if e.loss is not None else None))
        elif e.kind == "eval":
            out.append(("eval", e.step, e.full, json.dumps(e.accuracy, sort_keys=True)))
        elif e.kind == "finish":
            out.append(("finish", e.status, e.code))
        else:
            out.append((e.kind,))
    return out


def test_without_zero_gpu_nothing_is_decorated(monkeypatch):
    import app.gpu as gpu

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # the variable alone, `spaces` not importable: runs here
    monkeypatch.setitem(sys.modules, "spaces", None)
    assert gpu._spaces() is None and gpu.on_gpu(30)(len) is len


def test_zero_gpu_runs_every_gpu_bound_call_through_spaces_gpu_with_the_same_results(zero_gpu, tiny_cfg, tmp_path):
    from core.engine import train
    from core.explore import RESULT, RunModels, eval_sample, load_images
    from core.playground import class_probabilities

    gpu, spaces = zero_gpu
    assert {name for name, _ in spaces.DECORATED} == {"_events", "_embed", "classify"}
    gpu.RUN_S = 3600  # the run's time cap on ZeroGPU (100 s) would stop this tiny run on a busy 2-core machine
    cfg = tiny_cfg(steps=4, eval_every=2, checkpoint_every=0)
    here = list(train(cfg, tmp_path / "here", threading.Event()))
    there = list(gpu.events(cfg, tmp_path / "gpu", threading.Event()))
    assert _outcome(there) == _outcome(here) and there[-1].status == "done"
    assert json.loads((tmp_path / "gpu" / "config.json").read_text())["max_seconds"] == gpu.RUN_S

    rm = RunModels.open(tmp_path / "gpu")
    idx = eval_sample(rm.table, 12, seed=0)
    np.testing.assert_allclose(gpu.embed(rm, RESULT, idx), rm.embed(RESULT, idx), rtol=1e-5, atol=1e-6)

    visuals = {"zero-shot": rm.bundle.model.visual, "result": rm.visual(RESULT)}
    image = load_images(rm.table, [int(idx[0])])[0]
    got = gpu.classify(visuals, rm.pipeline, image, rm.text, rm.bundle.logit_scale)
    want = class_probabilities(visuals, rm.pipeline, image, rm.text, rm.bundle.logit_scale)
    assert got.keys() == want.keys() and all(np.allclose(got[k], want[k], atol=1e-6) for k in want)

    assert spaces.CALLS == [("_events", gpu.RUN_S + gpu.RUN_MARGIN_S), ("_embed", gpu.EMBED_S),
                            ("classify", gpu.CLASSIFY_S)]


def test_zero_gpu_durations_fit_a_visitor_without_an_account():
    """Every call asks for at most the smallest daily ZeroGPU quota (2 min), also with a Space's 10-minute run cap,
    and a run stops itself inside what it asked for."""
    import app.gpu as gpu
    from app.options import SPACE_CAPS
    from core.config import RunConfig

    for max_seconds in (None, 5.0, SPACE_CAPS["max_seconds"]):
        asked = gpu._run_duration(RunConfig(max_seconds=max_seconds), None)
        assert asked <= gpu.ZERO_GPU_QUOTA_S and asked - gpu.RUN_MARGIN_S >= min(max_seconds or gpu.RUN_S, gpu.RUN_S)
    assert max(gpu.EMBED_S, gpu.CLASSIFY_S) <= gpu.ZERO_GPU_QUOTA_S


# ---- speed: bf16 autocast where the CPU has bf16 units --------------------------------------------------------------

@pytest.mark.parametrize("cpuinfo,expected", [
    ("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n", True),  # Zen 4, Cooper Lake
    ("flags\t\t: fpu avx2 avx512f amx_tile amx_bf16 amx_int8\n", True),  # Sapphire Rapids
    ("flags\t\t: fpu sse avx avx2 fma f16c vaes\n", False),  # this VM: AVX2 only (its EPYC's AVX-512 is hidden)
    ("flags\t\t: avx512f avx512bw avx512_vnni\n", False),  # AVX-512 without bf16: autocast would be emulated
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Neoverse V1
    ("Features\t: fp asimd evtstrm aes\n", False),
    ("", False),
])
def test_bf16_units_are_read_from_the_cpu_flags(cpuinfo, expected):
    from core.hardware import bf16_units

    assert bf16_units(cpuinfo) is expected


SEE_TORCH_IMPORT = """
import json, os, runpy, sys
seen = []
sys.addaudithook(lambda ev, args: ev == "import" and args[0] == "torch" and not seen and seen.append(
    {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}))
runpy.run_path("app.py", run_name="studio")  # app.py's top, as `python app.py` runs it (main() not called)
import app.ui  # the app's modules import torch
print(json.dumps(seen))
"""


@pytest.mark.parametrize("user_value", [None, "PASSIVE"])
def test_the_app_sets_its_openmp_environment_before_torch_is_imported(user_value):
    """app.py sets core.hardware.SERVED_OPENMP_ENV before anything imports torch (libgomp reads it once, when it
    loads); a value already in the environment wins."""
    from core.hardware import SERVED_OPENMP_ENV, spin_openmp_workers

    env = {k: v for k, v in os.environ.items() if k not in SERVED_OPENMP_ENV}
    if user_value:
        env["OMP_WAIT_POLICY"] = user_value
    out = subprocess.run([sys.executable, "-c", SEE_TORCH_IMPORT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    at_torch_import = json.loads(out.strip().splitlines()[-1])
    assert at_torch_import == [{**SERVED_OPENMP_ENV, **({"OMP_WAIT_POLICY": user_value} if user_value else {})}]
    environ = {"GOMP_SPINCOUNT": "5"}
    assert spin_openmp_workers(environ) is False  # (this process imported torch long ago)
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "5"}


def test_bench_space_writes_json_and_only_its_block_of_the_markdown(tmp_path):
    """``python -m bench space`` (install section: no run) writes its JSON and replaces only the space block."""
    from bench.space import MARK_END, MARK_START, run_space

    md_file = tmp_path / "B.md"
    md_file.write_text(f"# B\nkept above\n{MARK_START}\nold rows\n{MARK_END}\nkept below\n")
    d = run_space(tmp_path / "space.json", ["install"], None, True, "python -m bench space --sections install",
                  md_file)
    assert json.loads((tmp_path / "space.json").read_text())["sections"]["install"] == d["sections"]["install"]
    stack = d["sections"]["install"]
    assert stack["torch"].startswith("torch==") and stack["torch_stack_mb"] >= max(stack["by_distribution_mb"].values())
    text = md_file.read_text()
    assert "old rows" not in text and text.startswith("# B\nkept above\n") and text.endswith("kept below\n")
    assert f"{stack['torch_stack_mb']:,.0f} MB" in text and "python -m bench space --sections install" in text


def test_committed_space_block_is_the_committed_json_and_the_studio_row_is_its_median():
    """BENCHMARKS.md's space block is ``markdown()`` of the committed space.json, and the Studio figure it compares
    with the target is the median of the runs the JSON keeps (one run on this VM is a sample, not a measurement)."""
    import statistics

    from bench.space import MARK_END, MARK_START, RESULTS, markdown

    d = json.loads((RESULTS / "space.json").read_text())
    text = (ROOT / "BENCHMARKS.md").read_text()
    block = text[text.index(MARK_START) + len(MARK_START):text.index(MARK_END)].strip()
    assert block == markdown(d).strip()
    st = d["sections"]["studio"]
    assert len(st["runs"]) == st["repeats"] >= 3
    assert st["run_s"] == round(statistics.median(r["run_s"] for r in st["runs"]), 2)
