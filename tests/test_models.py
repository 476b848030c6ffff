"""Real CLIPs are built as they were trained: the pretrained tag's config (QuickGELU, mean/std, interpolation, resize)
decides the tower and the pipeline. Proven offline through open_clip's real download path on a fabricated warm hub
cache (random ViT-B-16 weights saved where ``hf_hub_download`` looks, ``HF_HUB_OFFLINE=1``)."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from hubcache import fabricate_open_clip_cache
from PIL import Image

from core.models import ModelLoadError, load_clip, resolve, tag_needs_quick_gelu


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf-hub")
    weights = fabricate_open_clip_cache(cache, "ViT-B-16", "openai")
    return cache, weights


@pytest.fixture
def offline_hub(warm_cache, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(warm_cache[0]))
    return warm_cache


def _sample_images(tmp_path) -> list[Image.Image]:
    """Real images of odd sizes: the Studio's screenshots, one saved again as a JPEG and one portrait crop."""
    shots = [Image.open(p).convert("RGB") for p in sorted((ROOT / "docs" / "img").glob("*.png"))[:3]]
    shots[0].save(tmp_path / "x.jpg", quality=85)
    return shots + [Image.open(tmp_path / "x.jpg").convert("RGB"), shots[1].crop((10, 0, 333, 517))]


def test_openai_tag_is_built_with_quickgelu_from_the_hub_cache(offline_hub):
    from open_clip.transformer import QuickGELU
    from safetensors.torch import load_file

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # open_clip's "QuickGELU mismatch" warning must not fire
        b = load_clip("ViT-B-16", "openai")
    acts = {type(m) for m in b.model.visual.modules()} & {QuickGELU, torch.nn.GELU}
    assert acts == {QuickGELU} and b.quick_gelu
    saved = load_file(str(offline_hub[1]))
    w = "visual.transformer.resblocks.0.mlp.c_fc.weight"
    assert torch.equal(b.model.state_dict()[w], saved[w].float())  # the cached weights, not a random init
    assert (b.interpolation, b.resize_mode, b.image_size) == ("bicubic", "shortest", 224)


def test_eval_pipeline_equals_open_clips_own_preprocess(offline_hub, tmp_path):
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    b = load_clip("ViT-B-16", "openai")
    theirs = image_transform_v2(PreprocessCfg(**b.model.visual.preprocess_cfg), is_train=False)
    pipe = b.pipeline()
    for im in _sample_images(tmp_path):
        ours = pipe.normalise(pipe.raw([im]))[0]
        diff = (ours - theirs(im)).abs().max().item()
        assert diff < 1e-5, diff
    assert tuple(b.mean) == tuple(open_clip.OPENAI_DATASET_MEAN)


def test_quickgelu_follows_the_tag():
    assert tag_needs_quick_gelu("ViT-B-16", "openai") and tag_needs_quick_gelu("ViT-L-14", "openai")
    assert not tag_needs_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")
    assert not tag_needs_quick_gelu("ViT-B-16", None)


def test_unknown_tag_lists_the_valid_ones():
    with pytest.raises(ModelLoadError, match=r"not a known tag for ViT-B-16 \(known: openai, laion400m_e31"):
        resolve("ViT-B-16", "openia")


def _tiny_folder(root: Path) -> Path:
    for d, dom in enumerate(("art", "photo", "sketch")):
        for c, cls in enumerate(("cat", "dog")):
            for i in range(2):
                (root / dom / cls).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (40 + 7 * i, 30), (60 * d, 90 * c, 20 * i)).save(root / dom / cls / f"{i}.png")
    return root


def test_cli_trains_vit_b16_openai_end_to_end_offline(warm_cache, tmp_path):
    data = _tiny_folder(tmp_path / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(warm_cache[0]), "OMP_NUM_THREADS": "2",
           "CLIPOOD_CACHE": "off"}
    cmd = [sys.executable, "-m", "core", "train", "--dataset", f"folder:{data}", "--model", "ViT-B-16",
           "--pretrained", "openai", "--sources", "art,photo", "--targets", "sketch", "--steps", "1",
           "--method", "finetune", "--batch-size", "1", "--eval-every", "0", "--checkpoint-every", "0",
           "--device", "cpu", "--quiet",
           "--out", str(tmp_path / "runs"), "--run-id", "b16"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "QuickGELU mismatch" not in p.stderr
    run = tmp_path / "runs" / "b16"
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "done" and s["steps_done"] == 1 and set(s["result"]) >= {"id", "ood"}
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["model"], cfg["recipe"], cfg["sampler"]) == ("ViT-B-16", "ours", "pooled")  # a folder: no paper recipe
