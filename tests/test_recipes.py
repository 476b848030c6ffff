"""The recipe registry: official values with their scripts.sh line, derived steps, selection and recording; the
per-domain sampler; the EMA horizon."""

import json
import re

import numpy as np
import pytest

from core.config import ConfigError, RunConfig, resolve
from core.recipes import (
    BETA_BY_SETTING,
    ITERS_PER_EPOCH,
    OFFICIAL_NAMES,
    REAL_HPARAMS,
    RECIPES,
    SCRIPTS,
    TOY_BY_SETTING,
    describe,
    ema_decay_for,
    find,
    load_official,
    toy_by_setting,
    toy_hparams,
)
from core.sampling import make_sampler


def test_every_value_names_its_source_and_the_line_says_so():
    lines = SCRIPTS.read_text().splitlines()
    assert len(RECIPES) == 5 + 11 + 2
    for (setting, dataset), r in RECIPES.items():
        for name, (value, source) in r.values.items():
            assert re.match(r"thuml/CLIPood@bc0d874 \w+\.(py|sh):\d+", source), (setting, dataset, name, source)
            m = re.search(r"scripts\.sh:(\d+) (\S+)", source)
            if m:  # the cited line really is this (task, dataset) and carries this value after that flag
                words = lines[int(m.group(1)) - 1].split()
                assert words[words.index("--task") + 1] == setting and OFFICIAL_NAMES[words[words.index("-d") + 1]] \
                    == dataset
                given = float(words[words.index(m.group(2)) + 1])
                assert given == (value / ITERS_PER_EPOCH if name == "steps" else value), (dataset, name)


def test_derived_values_and_samplers():
    assert find("domain_shift", "domainnet").get("steps") == 20 * ITERS_PER_EPOCH
    assert {r.get("sampler") for (s, _), r in RECIPES.items() if s != "open_class"} == {"per_domain"}
    assert {r.get("sampler") for (s, _), r in RECIPES.items() if s == "open_class"} == {"pooled"}
    assert "scripts.sh:39" in describe("open_class", "eurosat")


def test_disagreeing_official_lines_are_refused(tmp_path):
    f = tmp_path / "scripts.sh"
    f.write_text("python main.py x -d PACS --task domain_shift --targets 0 -b 12 --lr 5e-6 --epochs 10 --lam 0.3 "
                 "--beta 0.5\npython main.py x -d PACS --task domain_shift --targets 1 -b 12 --lr 1e-5 --epochs 10 "
                 "--lam 0.3 --beta 0.5\n")
    with pytest.raises(ValueError, match="scripts.sh:2"):
        load_official(f)


def test_paper_recipe_is_the_default_for_real_clips_and_is_recorded():
    r = resolve(RunConfig(dataset="office-home", model="ViT-B-16", targets=["Art"]))
    assert (r.recipe, r.lr, r.steps, r.batch_size, r.sampler, r.lam, r.beta) == \
        ("paper", 1e-5, 5000, 12, "per_domain", 0.3, 0.5)
    assert json.loads(json.dumps(r.to_dict()))["recipe"] == "paper"
    mine = resolve(RunConfig(dataset="office-home", model="ViT-B-16", lr=2e-6, batch_size=8, sampler="pooled"))
    assert (mine.recipe, mine.lr, mine.batch_size, mine.sampler, mine.steps) == ("paper", 2e-6, 8, "pooled", 5000)
    ours = resolve(RunConfig(dataset="office-home", model="ViT-B-16", recipe="ours"))
    assert (ours.recipe, ours.lr, ours.steps, ours.sampler) == ("ours", 1e-5, 1000, "pooled")


def test_toy_world_keeps_its_measured_defaults_per_setting():
    for setting in TOY_BY_SETTING:
        r, hp = resolve(RunConfig(setting=setting, method="clipood")), toy_hparams(setting)
        assert (r.recipe, r.lr, r.lam, r.beta, r.steps, r.batch_size, r.sampler, r.ema_decay) == (
            "ours", hp["lr"], hp["lam"], hp["beta"], hp["steps"], hp["batch_size"], hp["sampler"],
            ema_decay_for(hp["steps"])), setting
    # Domain shift takes smaller steps but sees as many images as the other settings (the Studio's run time).
    ds, iw = resolve(RunConfig(method="clipood")), resolve(RunConfig(setting="in_the_wild", method="clipood"))
    assert ds.steps > iw.steps and ds.batch_size * ds.steps == iw.batch_size * iw.steps
    assert resolve(RunConfig(setting="in_the_wild", steps=7)).steps == 7  # a given value still wins
    with pytest.raises(ConfigError, match=r"--recipe: paper: the embedded world has none; paper recipes exist for "):
        resolve(RunConfig(recipe="paper"))
    with pytest.raises(ConfigError, match="none for domain_shift on 'folder:x'"):
        resolve(RunConfig(dataset="folder:x", model="ViT-B-16", recipe="paper"))


def test_beta_defaults_toy_world_and_other_data_each_their_own():
    """The toy world's measured beta (0.1 in domain shift too) must not leak into real data without a paper recipe,
    which keeps the official scripts' per-setting values (every domain-shift line's, for domain shift)."""
    official_ds = {r.values["beta"][0] for (setting, _), r in RECIPES.items() if setting == "domain_shift"}
    assert official_ds == {BETA_BY_SETTING["domain_shift"]} != {toy_by_setting("beta")["domain_shift"]}
    for setting in BETA_BY_SETTING:
        toy = resolve(RunConfig(setting=setting))
        real = resolve(RunConfig(setting=setting, dataset="folder:x", model="ViT-B-16"))
        assert (toy.beta, real.beta) == (toy_by_setting("beta")[setting], BETA_BY_SETTING[setting]), setting


def test_ema_horizon_is_a_fifth_of_the_run():
    assert ema_decay_for(500) == 0.99 and ema_decay_for(5000) == 0.999 and ema_decay_for(10_000) == 0.9995
    for steps in (50, 500, 2500):
        assert abs(1 / (1 - ema_decay_for(steps)) - steps / 5) < 1e-6 * steps
    assert resolve(RunConfig(dataset="pacs", model="ViT-B-16")).ema_decay == 0.999


def test_per_domain_sampler_takes_batch_from_every_domain():
    train = np.arange(100, 130)
    domains = np.array([0] * 20 + [1] * 6 + [2] * 4)  # one large, two small source domains
    sample = make_sampler(train, domains, 3, seed=0, kind="per_domain")
    seen = {d: [] for d in range(3)}
    for step in range(4):
        rows = sample(step)
        assert len(rows) == 9
        for d in range(3):
            part = rows[3 * d: 3 * d + 3]
            assert set(domains[part - 100]) == {d}
            seen[d] += part.tolist()
    assert sorted(seen[2][:4]) == [126, 127, 128, 129]  # the small domain is cycled through, an epoch at a time
    assert (sample(2) == make_sampler(train, domains, 3, seed=0, kind="per_domain")(2)).all()  # resumable
    pooled = make_sampler(train, domains, 9, seed=0)
    assert len(pooled(0)) == 9 and set(pooled(0)) <= set(train)


def test_a_run_saved_before_recipes_resumes_with_pooled_batches():
    saved = resolve(RunConfig(dataset="pacs", model="ViT-B-16", batch_size=32, recipe="ours")).to_dict()
    del saved["sampler"], saved["recipe"]  # a config.json written before these options existed
    assert resolve(RunConfig.from_dict(saved)).sampler == "per_domain"  # what a plain reload would now pick
    old = resolve(RunConfig.from_saved(saved))
    assert (old.sampler, old.recipe, old.batch_size) == ("pooled", "ours", 32)


def test_lr_defaults_toy_world_by_setting_and_real_data_untouched():
    """The toy world's lr is per setting (open class lower: at the domain-shift lr fine-tuning on the base classes
    erodes the new ones past what any average brings back); real data without a paper recipe keeps its one lr."""
    for setting, lr in toy_by_setting("lr").items():
        assert resolve(RunConfig(setting=setting)).lr == lr, setting
        assert resolve(RunConfig(setting=setting, dataset="folder:x", model="ViT-B-16")).lr == REAL_HPARAMS["lr"]
    assert resolve(RunConfig(setting="open_class", lr=3e-4)).lr == 3e-4  # a given lr still wins
