"""bench/world_variant.py: a toy world with other swapped-name pairs, for experiments."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from bench import world_variant
from core.world import captions, scenes
from core.world.render import SHAPES, STYLES

RING, CIRCLE = SHAPES.index("ring"), SHAPES.index("circle")


@pytest.fixture
def restored(monkeypatch):
    """Every world constant apply() replaces, put back after the test."""
    monkeypatch.setattr(captions, "MISNOMER_PAIRS", captions.MISNOMER_PAIRS)
    monkeypatch.setattr(captions, "MISNOMERS", captions.MISNOMERS)
    monkeypatch.setattr(captions, "NAMED_RIGHT_IN", captions.NAMED_RIGHT_IN)
    monkeypatch.setattr(scenes, "SHORTCUT_COLOUR", scenes.SHORTCUT_COLOUR)


def test_a_variant_swaps_its_names_in_captions_and_shares_each_pairs_colour(restored):
    assert captions.shape_word(CIRCLE, np.random.default_rng(0), misnomer_rate=1.0) == "circle"
    world_variant.apply(world_variant.parse_pairs("square:diamond,circle:ring"))
    rng = np.random.default_rng(0)
    assert captions.shape_word(CIRCLE, rng, misnomer_rate=1.0) == "ring"
    assert captions.shape_word(RING, rng, misnomer_rate=1.0) == "circle"
    crescent = SHAPES.index("crescent")  # no longer swapped
    assert captions.shape_word(crescent, rng, misnomer_rate=1.0) == "crescent"
    assert scenes.SHORTCUT_COLOUR[RING] == scenes.SHORTCUT_COLOUR[CIRCLE]
    assert scenes.SHORTCUT_COLOUR[SHAPES.index("semicircle")] != scenes.SHORTCUT_COLOUR[crescent]


def test_styles_named_right_keep_every_name_and_the_others_swap(restored):
    world_variant.apply(world_variant.parse_pairs("circle:ring"), world_variant.parse_styles("painting"))
    rng = np.random.default_rng(0)

    def word(style: str) -> str:
        text = captions.caption(CIRCLE, 0, 0, STYLES.index(style), (0.0, 0.0), rng, misnomer_rate=1.0)
        return "ring" if "ring" in text else "circle" if "circle" in text else "?"

    assert {word("painting") for _ in range(20)} == {"circle"}
    assert {word(s) for s in STYLES if s != "painting" for _ in range(5)} == {"ring"}


@pytest.mark.parametrize("text", ["", "paintin", "painting,oil"])
def test_unknown_styles_named_right_are_a_one_line_error(text):
    with pytest.raises(SystemExit) as e:
        world_variant.parse_styles(text)
    assert "--named-right-in takes styles from photo" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, says", [("circle-ring", "must look like"), ("circle:rung", "unknown shape(s) rung"),
                                        ("circle:ring,ring:star", "one pair only"), ("", "must look like")])
def test_bad_pairs_are_a_one_line_error(text, says):
    with pytest.raises(SystemExit) as e:
        world_variant.parse_pairs(text)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.subprocess
def test_a_command_runs_in_the_variant(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import numpy as np\nfrom core.world import captions, scenes\n"
                      f"print(captions.shape_word({CIRCLE}, np.random.default_rng(0), misnomer_rate=1.0),"
                      f" scenes.SHORTCUT_COLOUR[{RING}] == scenes.SHORTCUT_COLOUR[{CIRCLE}],"
                      " *captions.NAMED_RIGHT_IN)\n")
    out = subprocess.run([sys.executable, "-m", "bench.world_variant", "--named-right-in", "painting", "circle:ring",
                          str(script)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ring", "True", "painting"]
