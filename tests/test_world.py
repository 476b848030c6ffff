"""The embedded world and the shipped tiny CLIP."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from core.world.captions import captions_for
from core.world.render import COLOUR_NAMES, SHAPES, STYLES, render, sample_scenes
from core.world.scenes import SHORTCUT_COLOUR, caption_batch, render_grid

TOY_CLIP = ROOT / "assets" / "models" / "toy-clip"
needs_asset = pytest.mark.skipif(not (TOY_CLIP / "open_clip_model.safetensors").exists(),
                                 reason="toy-clip asset not built (python -m core.world.pretrain)")


def test_world_size():
    assert len(SHAPES) >= 16 and len(STYLES) >= 6 and len(COLOUR_NAMES) >= 8


def test_deterministic_pixels_and_captions():
    a = render_grid([0, 5, 15], [0, 3, 5], 4, seed=7, colour_bias=0.5, biased_domains=(0,))
    b = render_grid([0, 5, 15], [0, 3, 5], 4, seed=7, colour_bias=0.5, biased_domains=(0,))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = render_grid([0, 5, 15], [0, 3, 5], 4, seed=8, colour_bias=0.5, biased_domains=(0,))
    assert not torch.equal(a["images"], c["images"])
    x1, c1 = caption_batch(16, torch.Generator().manual_seed(3), np.random.default_rng(3))
    x2, c2 = caption_batch(16, torch.Generator().manual_seed(3), np.random.default_rng(3))
    assert torch.equal(x1, x2) and c1 == c2


def test_every_class_and_style_renders_a_visible_object():
    g = torch.Generator().manual_seed(0)
    n = len(SHAPES) * len(STYLES)
    shape = torch.arange(n) % len(SHAPES)
    style = torch.arange(n) // len(SHAPES)
    p = sample_scenes(shape, style, torch.zeros(n, dtype=torch.long), g)
    x = render(p, g)
    assert x.shape == (n, 3, 48, 48) and x.min() >= 0 and x.max() <= 1
    # the object changes the image: re-render the same scene with the shape moved away and compare
    far = sample_scenes(shape, style, torch.zeros(n, dtype=torch.long), torch.Generator().manual_seed(0))
    far.pos = torch.full_like(far.pos, 5.0)  # off canvas
    y = render(far, torch.Generator().manual_seed(0))
    diff = (x - y).abs().flatten(1).mean(1)
    assert (diff > 0.01).all(), [(SHAPES[i % 16], STYLES[i // 16]) for i in torch.nonzero(diff <= 0.01).flatten()]


def test_captions_name_the_shape_and_never_a_colour_in_infrared():
    g = torch.Generator().manual_seed(1)
    n = 400
    shape = torch.randint(0, 16, (n,), generator=g)
    style = torch.full((n,), STYLES.index("infrared"))
    caps = captions_for(sample_scenes(shape, style, torch.randint(0, 10, (n,), generator=g), g),
                        np.random.default_rng(0))
    from core.world.captions import MISNOMERS

    # a caption names its shape, or (for a shape of a swapped pair) the partner's name
    assert all(SHAPES[int(s)] in c or MISNOMERS.get(SHAPES[int(s)], "\0") in c for s, c in zip(shape, caps))
    assert not any(f" {col} " in f" {c} " for c in caps for col in COLOUR_NAMES)
    plain = captions_for(sample_scenes(shape, style, torch.randint(0, 10, (n,), generator=g), g),
                         np.random.default_rng(0), misnomer_rate=0.0)
    assert all(SHAPES[int(s)] in c for s, c in zip(shape, plain))


@pytest.mark.parametrize("bias", [0.0, 0.9])
def test_colour_bias_only_in_biased_domains(bias):
    grid = render_grid(list(range(16)), [0, 2], 40, seed=1, colour_bias=bias, biased_domains=(0,))
    follow = grid["colours"] == torch.tensor(SHORTCUT_COLOUR)[grid["labels"]]
    in_biased = follow[grid["domains"] == 0].float().mean().item()
    elsewhere = follow[grid["domains"] == 2].float().mean().item()
    assert abs(in_biased - (bias + (1 - bias) / 10)) < 0.06
    assert abs(elsewhere - 0.1) < 0.05


def test_pretrain_script_writes_loadable_local_dir(tmp_path):
    out = tmp_path / "clip"
    r = subprocess.run([sys.executable, "-m", "core.world.pretrain", "--out", str(out), "--steps", "2", "--batch",
                        "8", "--eval-every", "100"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    import open_clip

    model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{out}")
    assert model.visual.image_size in (48, (48, 48))
    log = json.loads((out / "pretrain_log.json").read_text())
    assert log["args"]["steps"] == 2 and len(log["sha256"]) == 64


@needs_asset
def test_shipped_model_gives_recorded_zero_shot_accuracy():
    from core.models import load_clip
    from core.world.zeroshot import zeroshot_table

    log = json.loads((TOY_CLIP / "pretrain_log.json").read_text())
    recorded = log["final_zeroshot_eval30"]
    b = load_clip("toy-clip")
    got = zeroshot_table(b.model, torch.device("cpu"), per=30)
    for k, v in recorded.items():
        assert abs(got[k] - v) <= 0.5, (k, got[k], v)
    assert 12.5 < min(v for k, v in got.items() if k != "mean") and got["mean"] < 90


@needs_asset
def test_short_clipood_run_improves_id_accuracy(tmp_path):
    from core.config import RunConfig
    from core.engine import run_to_end

    s = run_to_end(RunConfig(steps=80, eval_every=0, checkpoint_every=0, data_options={"shots": 16, "eval_per": 10}),
                   tmp_path / "r")
    assert s["status"] == "done"
    assert s["result"]["id"] > s["zeroshot"]["id"] + 1.0, (s["zeroshot"], s["result"])


def test_misnamed_pairs_swap_names_at_the_rate_and_nothing_else_is_misnamed():
    """The transferable gap: a misnamed shape is captioned with its partner's name at MISNOMER_RATE, others never."""
    from core.world.captions import MISNOMER_RATE, MISNOMERS, shape_word

    rng = np.random.default_rng(0)
    for k, name in enumerate(SHAPES):
        words = [shape_word(k, rng) for _ in range(2000)]
        if name in MISNOMERS:
            share = words.count(MISNOMERS[name]) / len(words)
            assert abs(share - MISNOMER_RATE) < 0.04, (name, share)
            assert set(words) == {name, MISNOMERS[name]}
        else:
            assert set(words) == {name}
    plain = np.random.default_rng(1)
    assert {shape_word(k, plain, misnomer_rate=0.0) for k in range(16)} == set(SHAPES)
    assert plain.random() == np.random.default_rng(1).random(), "rate 0 must leave the caption stream untouched"


def test_rarely_named_shapes_are_called_shape_at_one_minus_the_naming_rate_and_only_they():
    """The naming-rate knob: a rarely named shape keeps its name only ``naming_rate`` of the time, others always;
    rate 1 (the default) draws nothing, so every existing pre-training command reproduces its stream."""
    from core.world.captions import GENERIC_WORD, RARELY_NAMED, shape_word

    rng = np.random.default_rng(0)
    for k, name in enumerate(SHAPES):
        words = [shape_word(k, rng, misnomer_rate=0.0, naming_rate=0.2) for _ in range(2000)]
        if name in RARELY_NAMED:
            assert abs(words.count(name) / len(words) - 0.2) < 0.04, name
            assert set(words) == {name, GENERIC_WORD}
        else:
            assert set(words) == {name}
    plain = np.random.default_rng(1)
    assert {shape_word(k, plain, misnomer_rate=0.0) for k in range(16)} == set(SHAPES)
    assert plain.random() == np.random.default_rng(1).random(), "rate 1 must leave the caption stream untouched"


def test_pretrain_refuses_a_rate_outside_zero_to_one_in_one_line(capsys, tmp_path):
    from core.world.pretrain import main

    for flag in ("--misnomer-rate", "--naming-rate"):
        with pytest.raises(SystemExit):  # --steps 0: were the rate accepted, main would return at once, not exit
            main(["--out", str(tmp_path / "out"), "--steps", "0", flag, "1.5"])
        assert f"{flag} must be in [0, 1] (got 1.5)" in capsys.readouterr().err


def test_shortcut_colour_cannot_tell_a_misnamed_pair_apart():
    from core.world.captions import MISNOMER_PAIRS

    for a, b in MISNOMER_PAIRS:
        assert SHORTCUT_COLOUR[SHAPES.index(a)] == SHORTCUT_COLOUR[SHAPES.index(b)]
    paired = {n for pair in MISNOMER_PAIRS for n in pair}
    assert all(SHORTCUT_COLOUR[k] == k % len(COLOUR_NAMES) for k, n in enumerate(SHAPES) if n not in paired)


def test_card_lists_every_stage_of_a_continued_pretraining_in_order():
    from core.world.pretrain import _reproduce, _stages, stage_chain

    def stage(cmd, rate, sha, init=None):
        return {"command": cmd, "args": {"seed": 0, "misnomer_rate": rate}, "wall_minutes": 1.0, "sha256": sha,
                "init": init, "device": "cpu", "torch": "x"}

    s1 = stage("pretrain --steps 10", 0, "aaa")
    s2 = stage("pretrain --init S1 --steps 5", 0.7, "bbb", s1)
    s3 = stage("pretrain --init S2 --steps 3", 0.0, "ccc", s2)
    assert [s["sha256"] for s in stage_chain(s3)] == ["aaa", "bbb", "ccc"]
    card = _stages(s3)
    assert card.index("**Stage 1** (from scratch): `pretrain --steps 10`") < card.index(
        "**Stage 2** (continued from stage 1): `pretrain --init S1 --steps 5`") < card.index(
        "**Stage 3** (continued from stage 2, written into `--out`)")
    assert "with misnomers" not in card  # the last stage ran at rate 0
    assert "then stage 2 with `--init STAGE1 --out STAGE2`, then stage 3 with `--init STAGE2" in _reproduce(s3)
    assert _stages(s1).startswith("- **Command**") and _reproduce(s1) == ""
    s1["args"]["naming_rate"] = 0.1
    assert ("`pretrain --steps 10` (1.0 min; sha256 of its weights `aaa`; misnomer rate 0; naming rate 0.1"
            in _stages(s3))
    assert "naming rate" not in _stages(s2).split("**Stage 2**")[1]  # stage 2 kept the default (every name)


def test_vocabulary_is_every_caption_and_prompt_word_and_names_outside_it_are_unseen():
    """What a toy CLIP read in pre-training: every word of a large sample of real captions (misnomers included) and
    of the prompt templates is in the vocabulary; cat and dog are not."""
    from core.world.captions import _WORD, TOY_TEMPLATES, unseen_words, vocabulary

    rng, g, n = np.random.default_rng(0), torch.Generator().manual_seed(0), 4000
    shape, style = torch.randint(0, len(SHAPES), (n,), generator=g), torch.randint(0, len(STYLES), (n,), generator=g)
    caps = captions_for(sample_scenes(shape, style, torch.randint(0, 10, (n,), generator=g), g), rng)
    words = {w for c in caps for w in _WORD.findall(c.lower())}
    words |= {w for t in TOY_TEMPLATES for w in _WORD.findall(t.format("").lower())}
    assert words <= vocabulary() and len(words) >= 0.9 * len(vocabulary())
    assert unseen_words(["cat", "dog", "big_square", "Lightning Bolt", "cat"]) == ["cat", "dog"]
