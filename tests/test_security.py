"""Issue 7, security: no request value becomes a path, the server serves only its own files, uploads are capped,
nothing user-supplied is ever unpickled, and errors never leak a traceback. Each test tries the attack."""

import ast
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.runs import RunAccessError, RunIndex
from core.runstore import RunStore, check_run_id

ROOT = Path(__file__).resolve().parent.parent

ATTACKS = ["../etc", "..", ".", "/etc/passwd", "a/../../b", "..%2f..%2fetc", "RUNS/..", "run-a/..", "run-a/.",
           "Run-A", "RUN-A", "run-a\x00", "run-a\n", "run-a ", " run-a", "link", "link/config.json", "x" * 300,
           "C:\\Windows", "..\\..\\x", "~", "~root", "$HOME", ".browser-state-secret", "run-a/config.json"]


def fake_run(root: Path, rid: str) -> Path:
    d = root / rid
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"method": "clipood"}')
    return d


# --- 1. no path from user input ------------------------------------------------------------------------------------

def test_fuzzed_run_ids_never_leave_the_runs_root(tmp_path):
    """Any string as a run id (the load-run, compare, embeddings and playground pickers all end here) resolves to a
    run folder directly inside the root, or is refused with one line; symlinks planted in the root are refused."""
    root = tmp_path / "runs"
    fake_run(root, "run-a")
    outside = fake_run(tmp_path / "elsewhere", "secret")
    os.symlink(outside, root / "link")
    shared, private = RunIndex(root), RunIndex(root, shared=False)

    def check(rid):
        for idx, own in ((shared, None), (private, [rid, "run-a"])):
            try:
                p = idx.path(rid, own)
            except RunAccessError as e:
                assert "\n" not in str(e) and len(str(e)) < 500
                continue
            assert rid == "run-a" and p.parent == root.resolve() and not p.is_symlink()

    for rid in ATTACKS:
        check(rid)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.text(max_size=300),
                     st.builds(lambda a, b: a + b, st.sampled_from(["../", "/", "..\\", "%2e%2e/", "run-a/", "~/"]),
                               st.text(max_size=40))))
    def fuzz(rid):
        check(rid)

    fuzz()
    assert shared.visible() == ["run-a"]  # the symlinked folder is not listed either


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzzed_run_ids_are_checked_before_any_folder_is_made(rid):
    try:
        check_run_id(rid)
    except ValueError as e:
        assert "\n" not in str(e).replace(repr(rid), "")
        return
    assert "/" not in rid and "\\" not in rid and ".." not in rid and rid not in (".", "")
    assert rid.isascii() and rid.isprintable() and rid == rid.strip()


def test_cli_run_id_cannot_point_outside_out(tmp_path):
    for rid in ("../escape", "/tmp/escape", "a/b"):
        r = subprocess.run([sys.executable, "-m", "core", "train", "--model", "tiny-random", "--out",
                            str(tmp_path / "runs"), "--run-id", rid], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
        assert r.returncode == 2 and "bad run id" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "escape").exists() and not Path("/tmp/escape").exists()


# --- 3. checkpoints: nothing user-supplied is unpickled ------------------------------------------------------------

class _Canary:
    """Unpickling this writes the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _evil_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": _Canary(marker)}))
    return path


def _tiny_clip_folder(folder: Path) -> Path:
    import json

    from core.models import TINY_RANDOM_CFG

    folder.mkdir(parents=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_RANDOM_CFG}))
    return folder


@pytest.mark.parametrize("force_unsafe", [False, True])
def test_pickles_are_refused_on_every_load_path(tmp_path, force_unsafe):
    """A pickle whose unpickling writes a marker, fed to --pretrained, to a local-dir: model folder and as a run's
    checkpoint for --resume: all refused with one line, the marker never appears. ``force_unsafe`` sets
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, which turns torch.load back into plain pickle: we never call it anyway."""
    marker = tmp_path / "pwned"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if force_unsafe:
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=300)

    evil = _evil_pickle(tmp_path / "evil.pt", marker)
    r = cli("train", "--model", "ViT-B-32", "--pretrained", str(evil), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2 and "pickled checkpoints are refused" in r.stderr, r.stderr

    folder = _tiny_clip_folder(tmp_path / "model")
    _evil_pickle(folder / "open_clip_pytorch_model.bin", marker)
    r = cli("train", "--model", f"local-dir:{folder}", "--steps", "2", "--batch-size", "4", "--data", "shots=2",
            "--data", "eval_per=2", "--out", str(tmp_path / "runs"), "--run-id", "from-pickle", "--quiet")
    assert r.returncode == 2 and "pickles are refused" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    r = cli("train", "--model", "tiny-random", "--steps", "4", "--batch-size", "4", "--data", "shots=2", "--data",
            "eval_per=2", "--checkpoint-every", "2", "--out", str(tmp_path / "runs"), "--run-id", "r", "--quiet")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "runs" / "r"
    ckpt = RunStore(run).last_checkpoint
    _evil_pickle(ckpt, marker)  # an attacker swapped the checkpoint for a pickle
    config_before = (run / "config.json").read_bytes()
    r = cli("train", "--resume", str(run), "--quiet")
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "not a readable safetensors checkpoint" in out and "Traceback" not in out, out
    assert (run / "config.json").read_bytes() == config_before
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage" * 100, "truncate"])
def test_damaged_checkpoint_is_a_clear_failure_and_the_folder_stays(tiny_cfg, tmp_path, content):
    from core.engine import run_to_end

    cfg = tiny_cfg(steps=4, checkpoint_every=2, eval_every=0)
    run = tmp_path / "r"
    assert run_to_end(cfg, run)["status"] == "done"
    ckpt = RunStore(run).last_checkpoint
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2] if content == "truncate" else content)
    s = run_to_end(cfg, run, resume=True)
    assert s["status"] == "failed" and "not a readable safetensors checkpoint" in s["reason"]
    assert "\n" not in s["reason"] and (run / "config.json").is_file()


def test_no_unsafe_deserialisation_in_the_code():
    """AST lint (TorchFix TOR102 and friends): torch.load only with weights_only=True; no pickle/marshal loads,
    np.load(allow_pickle=True), pandas read_pickle or torch.load(weights_only=False) anywhere in the product."""
    files = [ROOT / "app.py", *[p for d in ("core", "app", "bench", "scripts") for p in (ROOT / d).rglob("*.py")]]
    bad = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if not isinstance(node, ast.Call):
                continue
            fn = ast.unparse(node.func)
            kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
            where = f"{f.relative_to(ROOT)}:{node.lineno} {fn}"
            if fn.endswith("torch.load") and kw.get("weights_only") != "True":
                bad.append(where)
            elif fn in ("pickle.load", "pickle.loads", "marshal.load", "marshal.loads", "dill.load", "joblib.load",
                        "pd.read_pickle", "pandas.read_pickle", "cloudpickle.load", "cloudpickle.loads"):
                bad.append(where)
            elif fn.endswith("np.load") and kw.get("allow_pickle") == "True":
                bad.append(where)
            elif kw.get("weights_only") == "False":
                bad.append(where)
    assert not bad, bad


def test_pretrained_values_are_allow_listed_before_open_clip_sees_them(tmp_path, monkeypatch):
    import open_clip

    from core.models import ModelLoadError, load_clip

    called = []
    monkeypatch.setattr(open_clip, "create_model", lambda *a, **k: called.append(a) or (_ for _ in ()).throw(
        AssertionError("open_clip reached")))
    (tmp_path / "w.bin").write_bytes(b"x")
    for tag in ("/etc/hostname", "../../x", "hf-hub:attacker/x", str(tmp_path / "w.bin"), "openai\n"):
        with pytest.raises(ModelLoadError, match="not a known tag"):
            load_clip("ViT-B-32", tag)
    assert not called


# --- app: routes, uploads, errors (one server for the module) --------------------------------------------------------

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """A server as a public Space runs it: private runs, no server paths, 1 MB uploads."""
    from studio import serve

    from app.options import Caps

    runs = tmp_path_factory.mktemp("public") / "runs"
    demo, url = serve(runs, caps=Caps(max_steps=2000, max_batch=64, max_upload_mb=1), shared_runs=False,
                      allow_local_paths=False)
    yield demo, url, runs
    demo.close()


def _tiny_zip(path: Path, pad: int = 0) -> Path:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for dom in ("photo", "sketch"):  # (domain names the API's pickers list before any upload)
            for cls in ("x", "y"):
                for i in range(3):
                    zf.writestr(f"{dom}/{cls}/{i}.png", buf.getvalue())
        if pad:
            zf.writestr("photo/x/pad.png", os.urandom(pad))
    return path


def test_file_routes_serve_nothing_of_ours(public):
    """GET on the app's own files, the runs folder, dotfiles and traversals: never a 200."""
    import httpx

    demo, url, runs = public
    fake_run(runs, "20260101-000000-secret")
    (ROOT / ".env-probe").write_text("SECRET=1") if not (ROOT / ".env-probe").exists() else None
    try:
        targets = [ROOT / "app.py", ROOT / "core" / "engine.py", runs / "20260101-000000-secret" / "config.json",
                   runs.parent, Path("/etc/passwd"), ROOT / ".env-probe"]
        paths = [f"gradio_api/file={p}" for p in targets] + [
            "gradio_api/file=.env-probe", "gradio_api/file=app.py", "gradio_api/file=../../../../etc/passwd",
            "gradio_api/file=..%2f..%2f..%2fetc%2fpasswd", "file=app.py", "file=/etc/passwd",
            f"gradio_api/file={str(ROOT / 'APP.PY')}", "monitoring", "gradio_api/monitoring"]
        for p in paths:
            r = httpx.get(url.rstrip("/") + "/" + p, timeout=30)
            assert r.status_code in (400, 403, 404, 405), (p, r.status_code)
            assert b"SECRET" not in r.content and b"def train" not in r.content and b"root:" not in r.content
    finally:
        (ROOT / ".env-probe").unlink(missing_ok=True)
    assert demo.allowed_paths in (None, []) and demo.show_error is False


def test_filedata_pointing_at_server_files_is_refused(public):
    """Gradio's own guard (its test_arbitrary_filepath_not_cached), on our upload input: a FileData naming a server
    file never reaches our code; nothing is started."""
    from studio import train_args

    demo, url, runs = public
    before = set(runs.iterdir()) if runs.exists() else set()
    c = gradio_client.Client(url, verbose=False)
    for path in ("/etc/passwd", "../../../etc/passwd", str(ROOT / "app.py")):
        with pytest.raises(Exception) as e:
            c.predict(**train_args(dataset="zip:", data_upload={"path": path, "meta": {"_type": "gradio.FileData"}}),
                      api_name="/train")
        assert "Traceback" not in str(e.value)
    assert (set(runs.iterdir()) if runs.exists() else set()) == before


def test_public_server_opens_only_uploaded_zips(public, tmp_path):
    from studio import train_args

    demo, url, runs = public
    z = _tiny_zip(tmp_path / "server-side.zip")
    c = gradio_client.Client(url, verbose=False)
    with pytest.raises(Exception) as e:  # a zip on the server's disk, named by path
        c.predict(**train_args(dataset="zip:", data_path=str(z)), api_name="/train")
    assert "upload the zip" in str(e.value)
    with pytest.raises(Exception) as e:  # another server path through the model picker
        c.predict(**train_args(model="local-dir:/etc"), api_name="/train")
    assert "not in the list of choices" in str(e.value)


def test_uploads_over_the_cap_are_refused(public, tmp_path):
    from studio import train_args

    demo, url, runs = public
    big = _tiny_zip(tmp_path / "big.zip", pad=(1 << 20) + 1)
    c = gradio_client.Client(url, verbose=False)
    before = set(runs.iterdir()) if runs.exists() else set()
    with pytest.raises(Exception) as e:
        c.predict(**train_args(dataset="zip:", data_upload=gradio_client.handle_file(str(big))), api_name="/train")
    assert "413" in str(e.value) or "large" in str(e.value).lower() or "size" in str(e.value).lower(), str(e.value)
    assert (set(runs.iterdir()) if runs.exists() else set()) == before


def test_an_uploaded_zip_trains_in_its_own_run(public, tmp_path):
    """The allowed path, end to end: a small upload under the cap is unpacked into the zip cache and trains."""
    from studio import STATUS, train_args

    demo, url, runs = public
    z = _tiny_zip(tmp_path / "ok.zip")
    c = gradio_client.Client(url, verbose=False)
    job = c.submit(**train_args(dataset="zip:", data_upload=gradio_client.handle_file(str(z)), steps=2,
                                whatif=False, sources=["photo"], targets=["sketch"], shots=2, eval_per=1),
                   api_name="/train")
    job.result(timeout=180)
    assert job.outputs()[-1][STATUS].startswith("**Finished**"), job.outputs()[-1][STATUS]


def test_internal_errors_reach_the_browser_without_a_traceback(public, monkeypatch):
    """show_error=False: an unexpected exception in a callback shows a generic error, never its text or a path."""
    demo, url, runs = public

    def boom(*a, **k):
        raise RuntimeError(f"internal detail {ROOT} token=hf_secret")

    monkeypatch.setattr(demo.ctx.runs, "visible", boom)
    monkeypatch.setattr(demo.ctx.runs, "path", boom)
    c = gradio_client.Client(url, verbose=False)
    with pytest.raises(Exception) as e:
        c.predict("20260101-000000-secret", [], api_name="/open_run")
    msg = str(e.value)
    assert "hf_secret" not in msg and str(ROOT) not in msg and "Traceback" not in msg
