"""The split scan (core/split_scan.py): which splits it measures, how it reads the checks, and that the README's block
is the committed JSON. The numbers come from `python -m core bench splits`."""

import copy
import re
from pathlib import Path

import pytest

from core.data.toy import TOY_BASE, TOY_SOURCES
from core.split_scan import (
    COMMITTED,
    END,
    FAMILY_IDS,
    LEAVE_ONE_OUT,
    PARTS,
    SHORT,
    START,
    all_families,
    base_halves,
    chosen,
    compare,
    family_table,
    held,
    held_out_mean,
    is_default,
    leave_one_out,
    load,
    markdown,
    merged,
    scan,
    source_pairs,
    without_shortcut,
)
from core.story import ordering_checks
from core.world.render import SHAPES, STYLES
from tests.test_story import GOOD

ROOT = Path(__file__).resolve().parent.parent


def test_every_source_pair_is_scanned_with_the_other_styles_as_targets():
    pairs = source_pairs()
    assert len(pairs) == len(STYLES) * (len(STYLES) - 1) // 2
    for by_setting in pairs.values():
        over = by_setting["domain_shift"]
        assert len(over["sources"]) == 2 and sorted(over["sources"] + over["targets"]) == sorted(STYLES)
    assert sum(is_default(v) for v in pairs.values()) == 1
    assert is_default(pairs["+".join(TOY_SOURCES)])
    off = without_shortcut(pairs)
    assert list(off) == list(pairs) and not any(is_default(v) for v in off.values())
    assert all(v["domain_shift"]["data_options"] == {"colour_bias": 0.0} for v in off.values())


def test_leave_one_out_holds_each_style_out_once_with_the_other_five_as_sources():
    runs = leave_one_out()
    assert list(runs) == list(STYLES)
    for held_out, by_setting in runs.items():
        over = by_setting["domain_shift"]
        assert over["targets"] == [held_out] and sorted(over["sources"] + [held_out]) == sorted(STYLES)


def _single_target_rows(target: str, zs: float, ft: float, co: float) -> dict:
    rows = {m: {"id": 90.0, "ood": v, f"ood/{target}": v} for m, v in (("zeroshot", zs), ("finetune", ft),
                                                                       ("clipood", co))}
    return rows


def test_held_out_mean_is_domainbeds_number_and_the_checks_see_every_held_out_style():
    parts = {"photo": _single_target_rows("photo", 60.0, 58.0, 63.0),
             "pixel": _single_target_rows("pixel", 30.0, 40.0, 44.0)}
    rows = held_out_mean(parts)
    assert rows["finetune"] == {"ood/photo": 58.0, "ood/pixel": 40.0, "ood": 49.0, "id": 90.0}
    chk = {n: ok for n, ok, _ in ordering_checks({"domain_shift": [rows]})}
    assert chk["domain shift OOD: finetune >= zero-shot + 2"]  # 49 vs 45
    assert chk["domain shift OOD: clipood >= finetune + 2"]  # 53.5 vs 49
    # photo is the strong held-out style (60 >= the mean 45) and fine-tuning loses there
    assert chk["finetune below zero-shot on a target where zero-shot is strong (>= its mean over targets)"]
    parts["photo"] = _single_target_rows("photo", 60.0, 61.0, 63.0)
    chk = {n: ok for n, ok, _ in ordering_checks({"domain_shift": [held_out_mean(parts)]})}
    assert not chk["finetune below zero-shot on a target where zero-shot is strong (>= its mean over targets)"]


def test_the_scan_runs_a_protocols_parts_and_checks_their_mean(monkeypatch, tmp_path):
    """A family entry with parts runs each part (saved under its own key, so a resumed scan skips it) and is checked
    on the parts' mean; run_all is replaced by a recorder so this runs in milliseconds."""
    import core.split_scan as split_scan

    seen = []

    def fake_run_all(settings, seeds, over_by_setting, tmp, save, res):
        over = over_by_setting["domain_shift"]
        seen.append(over["targets"][0])
        t = over["targets"][0]
        res["domain_shift"] = [_single_target_rows(t, 50.0, 50.0 + len(seen), 60.0)]
        return res

    monkeypatch.setattr(split_scan, "run_all", fake_run_all)
    saved = {}
    out = scan({"leave one out": {LEAVE_ONE_OUT: {PARTS: leave_one_out()}}}, 0, {}, tmp_path, saved, lambda: None)
    entry = out["leave one out"][LEAVE_ONE_OUT]
    assert seen == list(STYLES) and entry["default"] is False
    assert set(saved) == {f"leave one out/{LEAVE_ONE_OUT}/{t}" for t in STYLES}
    ft = entry["results"]["domain_shift"][0]["finetune"]
    assert ft["ood"] == pytest.approx(50.0 + 3.5) and ft["ood/infrared"] == 56.0
    assert dict((n, ok) for n, ok, _ in entry["checks"])["domain shift OOD: finetune >= zero-shot + 2"]


def test_base_halves_are_fixed_before_measuring_and_hold_half_the_classes():
    halves = base_halves()
    assert halves == base_halves()  # drawn with a fixed seed: the same splits every time
    assert base_halves(seed=1) != halves
    for by_setting in halves.values():
        assert set(by_setting) == {"open_class", "in_the_wild"}
        base = by_setting["open_class"]["base_classes"]
        assert len(set(base)) == len(SHAPES) // 2 and base == sorted(base, key=SHAPES.index)
    assert not any(v["open_class"]["base_classes"] == list(TOY_BASE) for v in halves.values())


def test_a_scan_with_other_knobs_passes_them_to_every_run_and_names_them(monkeypatch, tmp_path):
    """`bench splits --families loo --lr ... --data ...` runs only that family, every run gets the flags (a family's
    own toy-shapes option merged with --data, not replacing it), and the report's command and markdown name them."""
    import core.split_scan as split_scan
    from core.cli import build_parser

    runs = []

    def fake_run_all(settings, seeds, over_by_setting, tmp, save, res):
        over = over_by_setting["domain_shift"]
        runs.append(over)
        res["domain_shift"] = [_single_target_rows(over["targets"][0], 50.0, 53.0, 56.0)]
        return res

    monkeypatch.setattr(split_scan, "run_all", fake_run_all)
    out = tmp_path / "loo.json"
    a = build_parser().parse_args(["bench", "splits", "--families", "loo", "--lr", "3e-4", "--data", "shots=16",
                                   "--out", str(out)])
    assert split_scan.main(a) == 0
    assert [r["targets"] for r in runs] == [[t] for t in STYLES]
    assert all(r["lr"] == 3e-4 and r["data_options"] == {"shots": 16} for r in runs)
    report = load(out)
    assert list(report["families"]) == ["leave one out"]
    assert report["command"] == ("python -m core bench splits --seed 0 --halves 6 --families loo --lr 0.0003 "
                                 "--data shots=16")
    assert "flags as in the command" in markdown(report) and "default hyperparameters" not in markdown(report)
    assert "default hyperparameters" in markdown(load(COMMITTED))


def test_a_familys_own_world_option_merges_with_the_flags():
    off = without_shortcut(source_pairs())["photo+sketch"]["domain_shift"]
    over = {"lr": 1e-4, "data_options": {"shots": 16, "colour_bias": 0.8}}
    assert merged(over, off)["data_options"] == {"shots": 16, "colour_bias": 0.0}
    assert merged(over, off)["lr"] == 1e-4 and merged(over, off)["sources"] == ["photo", "sketch"]
    assert "data_options" not in merged({"lr": 1e-4}, source_pairs()["photo+sketch"]["domain_shift"])


def test_families_are_chosen_by_id_and_an_unknown_id_is_a_one_line_error():
    from core.config import ConfigError

    assert list(chosen(None, 2)) == list(all_families(2)) == list(FAMILY_IDS.values())
    assert list(chosen(["loo", "bases"], 2)) == ["leave one out", "bases"]
    with pytest.raises(ConfigError, match="no split family 'pairs'; choose from sources, shortcut-off, loo, bases"):
        chosen(["pairs"], 2)


def test_the_committed_scan_is_not_overwritten_by_an_experiment(monkeypatch, tmp_path):
    """The README and the Studio quote the committed JSON as every family at the defaults: a scan with flags or a
    family subset must go elsewhere, and says so before running anything."""
    import core.split_scan as split_scan
    from core.cli import build_parser
    from core.config import ConfigError
    from core.split_scan import main

    monkeypatch.setattr(split_scan, "run_all", lambda *a: pytest.fail("ran before refusing"))

    for extra in (["--families", "loo"], ["--data", "colour_bias=0.8"], ["--lam", "0.0"]):
        for where in (["--out", str(COMMITTED)], ["--out", str(tmp_path / "x.json"), "--readme", "README.md"]):
            a = build_parser().parse_args(["bench", "splits", *extra, *where])
            with pytest.raises(ConfigError, match="--out: splits.json and the README's scan table hold the scan"):
                main(a)


def test_saved_scans_compare_side_by_side_each_row_named_by_its_flags(tmp_path):
    """`bench splits --compare A B` reads saved scans (no runs) and puts one family's rows together, each named by
    the flags its scan ran with, so a knob's effect on the checks reads off one table."""
    from core.config import ConfigError
    from core.split_scan import write

    good = {"domain_shift": GOOD["domain_shift"][:1]}
    bad = copy.deepcopy(good)
    bad["domain_shift"][0]["finetune"]["ood"] = bad["domain_shift"][0]["zeroshot"]["ood"] + 1.0
    paths = []
    for flags, res in (([], good), (["--data colour_bias=0.8"], bad)):
        report = {**_report({"s x": res}), "flags": flags}
        report["families"] = {"leave one out": {LEAVE_ONE_OUT: report["families"]["sources"]["s x"]}}
        paths.append(str(tmp_path / f"{len(paths)}.json"))
        write(report, Path(paths[-1]), None, "")
    md = compare(paths, ["loo"])
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| defaults", "| --data colour_bias=0.8"]
    assert rows[0].endswith("| **yes** |") and "✗ +1.0" in rows[1] and rows[1].endswith("| no |")
    assert md.startswith(f"Compared with `python -m core bench splits --compare {' '.join(paths)} --families loo`")
    with pytest.raises(ConfigError, match="share no family"):
        compare(paths, ["bases"])
    with pytest.raises(ConfigError, match="no split family 'held'"):
        compare(paths, ["held"])
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ConfigError, match="other.json is not a saved split scan"):
        compare([str(tmp_path / "other.json")], None)


def test_the_readmes_compared_scans_are_the_committed_jsons(monkeypatch):
    """The README's side-by-side table is `--compare` of the scans it names, as committed."""
    from core.split_scan import COMPARE_END, COMPARE_START

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(COMPARE_START) + len(COMPARE_START):readme.index(COMPARE_END)].strip()
    cmd = re.match(r"Compared with `python -m core bench splits --compare (.+?) --families (\S+)`", block)
    paths = cmd[1].split()
    assert all((ROOT / path).is_file() for path in paths) and paths[0] == "bench/results/splits.json"
    monkeypatch.chdir(ROOT)  # the block names the scans relative to the repository root
    assert block == compare(paths, cmd[2].split(","))


def test_every_check_has_a_short_column_name():
    assert {n for n, _, _ in ordering_checks(GOOD)} == set(SHORT)


def _report(res_by_split):
    fam = {n: {"results": r, "checks": ordering_checks(r), "default": False} for n, r in res_by_split.items()}
    return {"command": "python -m core bench splits", "seed": 0, "precision": "fp32", "wall_s": 60.0,
            "families": {"sources": {k: v for k, v in fam.items() if k.startswith("s")},
                         "bases": {k: v for k, v in fam.items() if k.startswith("b")}}}


def test_markdown_counts_the_splits_where_every_check_holds_and_marks_each_failure():
    good = {"domain_shift": GOOD["domain_shift"][:1]}
    bad = copy.deepcopy(good)
    bad["domain_shift"][0]["finetune"]["ood"] = bad["domain_shift"][0]["zeroshot"]["ood"] + 1.0
    oc = {k: GOOD[k][:1] for k in ("open_class", "in_the_wild")}
    md = markdown(_report({"s good": good, "s bad": bad, "b good": oc}))
    assert "- on 1 of 2 source pairs" in md and "- on 1 of 1 random base halves" in md
    bad_row = next(line for line in md.splitlines() if line.startswith("| s bad |"))
    assert "✗ +1.0" in bad_row and bad_row.endswith("| no |")
    assert next(line for line in md.splitlines() if line.startswith("| s good |")).endswith("| **yes** |")


def test_family_table_has_a_column_per_check():
    res = {"domain_shift": GOOD["domain_shift"][:1]}
    fam = {"x": {"results": res, "checks": ordering_checks(res)}}
    head, _, row = family_table("sources", fam)
    assert head.count("|") == row.count("|") == len(fam["x"]["checks"]) + 3
    assert held(fam["x"])


def test_committed_scan_block_in_the_readme_is_the_committed_json():
    data = load(COMMITTED)
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(START) + len(START):readme.index(END)].strip()
    assert block == markdown(data)
    assert len(data["families"]["sources"]) == len(source_pairs())
    assert list(data["families"]["leave one out"]) == [LEAVE_ONE_OUT]
    assert list(data["families"]["bases"]) == list(base_halves(int(re.search(r"--halves (\d+)", data["command"])[1])))


@pytest.mark.slow
def test_a_committed_split_reproduces(tmp_path):
    """The first scanned source pair, rerun with today's code: the same numbers as the committed JSON."""
    from core.config import STORY_PRECISION
    from core.story import run_setting

    data = load(COMMITTED)
    name, v = next(iter(data["families"]["sources"].items()))
    over = {"precision": STORY_PRECISION, **source_pairs()[name]["domain_shift"]}
    got = run_setting("domain_shift", data["seed"], tmp_path, over)
    want = v["results"]["domain_shift"][0]
    for row in ("zeroshot", "finetune", "clipood"):
        assert got[row]["ood"] == pytest.approx(want[row]["ood"], abs=1e-6), row


def test_a_runs_split_is_found_under_the_name_the_scan_gave_it():
    from core.split_scan import scanned_name

    assert scanned_name("domain_shift", None, None, None, None) == ("sources", "+".join(TOY_SOURCES))
    assert scanned_name("domain_shift", ["pixel", "photo"], None, None, None) == ("sources", "photo+pixel")
    assert scanned_name("domain_shift", ["photo", "pixel"], ["sketch"], None, None) is None  # not all the others
    assert scanned_name("domain_shift", ["photo", "pixel"], None, None, {"colour_bias": 0}) == (
        "sources, shortcut off", "photo+pixel")
    assert scanned_name("domain_shift", None, None, None, {"colour_bias": 0.5}) is None
    assert scanned_name("domain_shift", None, None, None, {"shots": 8}) is None
    half = next(iter(base_halves()))
    assert scanned_name("open_class", None, None, half.split(", ")[::-1], None) == ("bases", half)
    assert scanned_name("in_the_wild", ["photo", "sketch"], None, half.split(", "), None) is None
    assert scanned_name("open_class", None, None, None, None) == ("bases", ", ".join(TOY_BASE))
