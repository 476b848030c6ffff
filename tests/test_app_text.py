"""What the Studio says (app/text.py): core's messages reworded for the form, never a CLI flag."""

import re

import pytest

from app import text
from core.config import ConfigError
from core.data import assemble
from core.data.hub import fetch_hint, script_dataset_message
from core.data.real import _domainbed_folder
from core.data.table import DatasetError

FLAG = re.compile(r"(?<![\w/.])--[a-z]")


def core_messages() -> list[str]:
    out = [f"cannot reach the Hugging Face Hub for dataset 'flwrlabs/pacs' (ConnectionError: offline). "
           f"{fetch_hint('flwrlabs/pacs')}",
           script_dataset_message("someone/old", "a loading script"),
           str(ConfigError("batch_size", "must be an integer in [1, 65536] (got 0)"))]
    try:
        _domainbed_folder("vlcs", "VLCS")
    except DatasetError as e:
        out.append(str(e))
    try:
        assemble.int_option("shots", "x", 1)
    except DatasetError as e:
        out.append(str(e))
    return out


@pytest.mark.parametrize("message", core_messages())
def test_core_messages_are_reworded_without_cli_flags(message):
    assert FLAG.search(message), "the test needs a core message that names a flag"
    said = text.studio_words(message)
    assert not FLAG.search(re.sub(r"`[^`]*`", "", said)), said  # (a shell command to run elsewhere may keep its own)
    assert "\n" not in said and said


def test_studio_words_keeps_the_cause_and_names_the_fix():
    hub = text.studio_words(f"cannot reach the Hugging Face Hub for dataset 'flwrlabs/pacs' (offline). "
                            f"{fetch_hint('flwrlabs/pacs')}")
    assert hub.startswith("cannot reach the Hugging Face Hub for dataset 'flwrlabs/pacs'")
    assert "Hugging Face cache" in hub
    try:
        _domainbed_folder("vlcs", "VLCS")
    except DatasetError as e:
        said = text.studio_words(e)
    assert "folder:" in said and "./data/VLCS" in said
    assert text.studio_words(ConfigError("batch_size", "must be >= 1")) == "Batch size: must be >= 1"
    assert text.studio_words(ValueError("line one\nline two")) == "line one"


def test_what_the_studio_says_happens_is_read_from_the_committed_story(tmp_path, monkeypatch):
    """Issue 15, claims that match the numbers: the header and Learn sentence carry the committed story benchmark's
    means (derived here from the JSON), and say where fine-tuning loses to zero-shot only where it does."""
    import json
    import statistics

    from core import story

    res = json.loads(story.COMMITTED.read_text())["results"]

    def mean(setting, row, metric):
        return statistics.mean(r[row][metric] for r in res[setting])

    said = text.measured_story()
    for row, name in (("zeroshot", "zero-shot"), ("finetune", "fine-tune"), ("clipood", "CLIPood"),
                      ("wiseft", "WiSE-FT")):
        assert f"{name} {mean('domain_shift', row, 'ood'):.1f} %" in said
    assert f"CLIPood {mean('open_class', 'clipood', 'new'):.1f} %" in said
    ds = res["domain_shift"]
    for t in [k.split("/", 1)[1] for k in ds[0]["zeroshot"] if k.startswith("ood/")]:
        loses = mean("domain_shift", "finetune", f"ood/{t}") < mean("domain_shift", "zeroshot", f"ood/{t}")
        assert (t in said.split("loses to zero-shot on", 1)[-1].split(".")[0]) is loses, t
    # the sentence follows the JSON: a table where fine-tuning wins everywhere says so
    fake = json.loads(story.COMMITTED.read_text())
    for r in fake["results"]["domain_shift"]:
        for k in r["finetune"]:
            r["finetune"][k] = 99.0
    (tmp_path / "story.json").write_text(json.dumps(fake))
    monkeypatch.setattr(story, "COMMITTED", tmp_path / "story.json")
    monkeypatch.setattr(story.committed_means, "__defaults__", (tmp_path / "story.json",))
    assert "fine-tuning gains on every unseen style" in text.measured_story()
    monkeypatch.setattr(story.committed_means, "__defaults__", (tmp_path / "missing.json",))
    assert text.measured_story() == ""
    assert "erodes it" not in text.SUBTITLE and "keeps it" not in text.SUBTITLE


def test_learn_says_where_the_split_scan_found_the_ordering_from_its_json(tmp_path, monkeypatch):
    from core import split_scan

    data = split_scan.load(split_scan.COMMITTED)
    said = text.measured_splits()
    for fam, (_, what) in split_scan.FAMILIES.items():
        ok = [n for n, v in data["families"][fam].items() if split_scan.held(v)]
        line = next(x for x in said.splitlines() if what in x)
        assert line.startswith(f"- on {len(ok)} of {len(data['families'][fam])} ")
        assert all(n in line for n in ok)
    monkeypatch.setattr(split_scan.committed_summary, "__defaults__", (tmp_path / "missing.json",))
    assert text.measured_splits() == ""
