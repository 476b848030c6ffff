"""Issue 17, the public-Space attacks on the app: hub ids never resolve to the server's disk (and errors do not tell
what exists), per-class views are capped for a 2,000-class upload, gradio's upload cache returns to its quota, the
caches count against the runs quota, a Space caps run time and shows what is left, and the small ones (a non-ASCII
browser token, a planted config.json link, a non-image in the Playground). Each test tries the attack."""

import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from app.runs import RunAccessError, RunIndex
from core.data import quota

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """A server as a public Space runs it, with a 1 MB upload-cache quota and its own zip cache."""
    from studio import serve

    from app.options import Caps

    tmp = tmp_path_factory.mktemp("space")
    old_cache, old_quota = os.environ.get("CLIPOOD_CACHE"), quota.quota()
    os.environ["CLIPOOD_CACHE"] = str(tmp / "cache")
    demo, url = serve(tmp / "runs", caps=Caps(max_steps=50, max_batch=16, max_upload_cache_mb=1, max_cache_gb=1.0,
                                              max_seconds=600.0, upload_ttl_s=3600), shared_runs=False,
                      allow_local_paths=False)
    yield demo, url, tmp
    demo.close()
    quota.set_quota(old_quota)
    os.environ.pop("CLIPOOD_CACHE") if old_cache is None else os.environ.__setitem__("CLIPOOD_CACHE", old_cache)


def data_args(dataset="toy-shapes", path="", upload=None, sources=("photo",), targets=("sketch",)):
    return [dataset, path, upload, "domain_shift", list(sources), list(targets), [], 0.9, 4, 3]


def test_hub_ids_never_read_the_servers_disk_nor_tell_what_exists(space, tmp_path, monkeypatch):
    """Before: ``hf:owner/name`` loaded ``./owner/name`` (with --runs-dir runs: another visitor's run folder), and a
    present and a missing path gave different errors."""
    demo, url, _ = space
    local = tmp_path / "owner" / "present"
    local.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(local / "a.png")
    monkeypatch.chdir(tmp_path)
    c = gradio_client.Client(url, verbose=False)
    said = {}
    for repo in ("owner/present", "owner/absent"):
        said[repo] = c.predict(*data_args("hf:", repo), api_name="/preview_data")[3].replace(repo, "ID")
    assert said["owner/present"] == said["owner/absent"] and "cannot load dataset 'ID' from the Hugging Face Hub" \
        in said["owner/absent"], said


def _classes_zip(path: Path, k: int = 2000) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 10, 10)).save(buf, "PNG")
    with zipfile.ZipFile(path, "w") as zf:
        for c in range(k):
            for d in ("photo", "sketch"):
                zf.writestr(f"{d}/class{c:04d}/0.png", buf.getvalue())
    return path


def test_per_class_views_draw_a_sample_of_2000_classes_and_say_so(space, tmp_path):
    """Before: Margins drew a 2,000 x 2,000 pair of heatmaps (131 CPU-s and 100 MB with a real CLIP)."""
    demo, url, _ = space
    c = gradio_client.Client(url, verbose=False)
    data = data_args("zip:", "", gradio_client.handle_file(str(_classes_zip(tmp_path / "k.zip"))))
    fig = json.loads(c.predict("tiny-random", "", 0.3, *data, api_name="/margins")["plot"])
    assert len(fig["data"][0]["x"]) == 64 and "showing 64 of 2000 classes" in fig["layout"]["title"]["text"]
    emb, summary = c.predict("__zeroshot__", "zero-shot", "class", 300, "PCA", False, [], "tiny-random", *data,
                             api_name="/embeddings")
    stars = [t for t in json.loads(emb["plot"])["data"] if t.get("name") == "class text"][0]
    assert len(stars["text"]) == 64 and "showing 64 of 2000 classes" in summary
    grid, counts, shortcut, message = c.predict(*data, api_name="/preview_data")
    assert "2000 classes" in message and "x 64 classes (a fixed sample)" in message


def test_a_non_image_in_the_playground_is_named(space, tmp_path):
    demo, url, _ = space
    notes = tmp_path / "notes.png"
    notes.write_text("just text")
    c = gradio_client.Client(url, verbose=False)
    with pytest.raises(Exception) as e:
        c.predict(gradio_client.handle_file(str(notes)), "cat, dog", [], [], "tiny-random", *data_args(),
                  api_name="/playground")
    assert "notes.png" in str(e.value) and "not an image" in str(e.value), str(e.value)


def test_the_upload_cache_returns_to_its_quota(space, tmp_path):
    """Before: every upload stayed on disk until a restart (no delete_cache, no byte quota)."""
    import httpx

    from app import uploads

    demo, url, _ = space
    assert demo.delete_cache == (300, 3600)
    for i in range(6):
        r = httpx.post(url.rstrip("/") + "/gradio_api/upload",
                       files={"files": (f"u{i}.zip", os.urandom(400_000), "application/zip")}, timeout=30)
        assert r.status_code == 200, r.text
    deadline = time.time() + 30
    while uploads.usage(demo) > 1 << 20 and time.time() < deadline:
        time.sleep(0.5)
    assert uploads.usage(demo) <= 1 << 20


def test_a_non_ascii_browser_token_is_ignored(space):
    """Before: hmac.compare_digest raised TypeError (gradio's generic error) on a non-ASCII token."""
    demo, _, _ = space
    good = demo.ctx.token("20260101-000000-x")
    assert demo.ctx.verified(["é~abc", "run~ü", "\udcff~x", good]) == ["20260101-000000-x"]


def test_a_planted_config_link_is_not_followed_even_locally(tmp_path):
    root = tmp_path / "runs"
    (root / "20260101-000000-a").mkdir(parents=True)
    (tmp_path / "secret.json").write_text('{"method": "clipood"}')
    os.symlink(tmp_path / "secret.json", root / "20260101-000000-a" / "config.json")
    with pytest.raises(RunAccessError):
        RunIndex(root, shared=True).path("20260101-000000-a")


def test_the_caches_count_against_the_runs_quota(tmp_path):
    """On a Space the unpacked zips, eval tensors and uploads share the runs folder's quota."""
    root = tmp_path / "runs"
    for i in range(3):
        d = root / f"2026010{i}-000000-r"
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "summary.json").write_text('{"status": "done"}')
        (d / "blob").write_bytes(os.urandom(100_000))
    idx = RunIndex(root, max_bytes=400_000, extra_bytes=lambda: 200_000)
    evicted = idx.make_room()
    assert evicted and evicted[0] == "20260100-000000-r"


def test_a_space_caps_run_time_by_default_and_shows_the_time_left(monkeypatch):
    import importlib.util

    from app import render
    from app.records import RunRecord

    spec = importlib.util.spec_from_file_location("app_script", Path(__file__).resolve().parent.parent / "app.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("SYSTEM", "spaces")
    a = script.parse_args([])
    assert a.max_seconds == 600 and a.max_cache_gb == 4 and a.upload_ttl_s == 3600
    rec = RunRecord(run_id="r", config={"max_seconds": 600.0}, total_steps=100,
                    steps=[{"step": 10, "images_per_s": 50.0, "elapsed_s": 130.0, "eta_s": 1000.0}])
    assert "time limit 7:50 left" in render.progress_html(rec)
