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
