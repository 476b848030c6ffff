"""Run any command of this project in a variant of the toy world with other swapped-name pairs (an experiment tool).

    python -m bench.world_variant square:diamond,crescent:semicircle,circle:ring,triangle:arrow \\
        core.world.pretrain --out /tmp/tc4 --init STAGE1 --steps 500 --warmup 50 --lr 3e-4 --eval-every 250
    python -m bench.world_variant PAIRS core bench splits --families sources,loo --model local-dir:/tmp/tc4 --out x.json
    python -m bench.world_variant --named-right-in painting PAIRS core.world.pretrain ...

The world's transferable gap is which names the pre-training captions swap (``core.world.captions.MISNOMER_PAIRS``),
and the colour shortcut gives the two shapes of each pair one colour (``core.world.scenes.SHORTCUT_COLOUR``). Both are
world constants. ``--named-right-in STYLE[,STYLE]`` (before the pairs) also makes the captions of those styles name
every shape right (``captions.NAMED_RIGHT_IN``): a gap that is not the same in every style, as CLIP's is not.
Trying another world means pre-training a model on the variant's captions *and* fine-tuning on the variant's shortcut
colours, so every command of the experiment must run in the same variant: this sets the variant in this process,
then runs the named module (``python -m`` style) or script with the remaining arguments. A variant is an experiment,
not a default: adopting one means changing the constants and re-pretraining the shipped model.
"""

from __future__ import annotations

import runpy
import sys

from core.cli import _csv
from core.world import captions, scenes
from core.world.render import SHAPES, STYLES

NAMED_RIGHT_FLAG = "--named-right-in"


def parse_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``a:b,c:d`` -> ((a, b), (c, d)); each name a toy shape, no shape in two pairs (else a one-line error)."""
    pairs = tuple(tuple(p.split(":")) for p in _csv(text))
    names = [n for p in pairs for n in p]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise SystemExit(f"pairs must look like square:diamond,crescent:semicircle (got {text!r})")
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {', '.join(unknown)}: use names from {', '.join(SHAPES)}")
    if len(set(names)) != len(names):
        raise SystemExit(f"a shape may be in one pair only (got {text!r})")
    return pairs


def parse_styles(text: str) -> tuple[str, ...]:
    """``painting,sketch`` -> toy styles (else a one-line error)."""
    styles = tuple(_csv(text))
    unknown = [s for s in styles if s not in STYLES]
    if not styles or unknown:
        raise SystemExit(f"{NAMED_RIGHT_FLAG} takes styles from {', '.join(STYLES)} (got {text!r})")
    return styles


def apply(pairs: tuple[tuple[str, str], ...], named_right_in: tuple[str, ...] = ()) -> None:
    """Swap these names in the caption stream (except in ``named_right_in``'s captions) and give each pair one
    shortcut colour, in this process."""
    captions.NAMED_RIGHT_IN = named_right_in
    captions.MISNOMER_PAIRS = pairs
    captions.MISNOMERS = captions.swapped_names(pairs)
    scenes.SHORTCUT_COLOUR = scenes.shortcut_colours(pairs)


def main(argv: list[str]) -> None:
    named_right = ()
    if argv[:1] == [NAMED_RIGHT_FLAG]:
        named_right, argv = parse_styles(argv[1] if len(argv) > 1 else ""), argv[2:]
    if len(argv) < 2:
        raise SystemExit(f"usage: python -m bench.world_variant [{NAMED_RIGHT_FLAG} STYLE,...] a:b,c:d,... "
                         "MODULE|SCRIPT.py [ARGS...]")
    apply(parse_pairs(argv[0]), named_right)
    target, sys.argv = argv[1], [argv[1], *argv[2:]]
    print(f"world variant: swapped pairs {captions.MISNOMER_PAIRS}, named right in {named_right or 'no style'}",
          file=sys.stderr)
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
