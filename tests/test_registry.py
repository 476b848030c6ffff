"""core/data/registry.py: every dataset knows its options, and an option it does not know is refused by name."""

import pytest

from core.data.registry import dataset_option_names, list_datasets, open_dataset
from core.data.table import DatasetError


def test_a_misspelt_option_is_refused_with_the_known_ones():
    with pytest.raises(DatasetError, match=r"no option 'colour_biass'.*colour_bias, eval_per, shots"):
        open_dataset("toy-shapes", colour_biass=0.0, shots=1, eval_per=1)


def test_an_option_of_another_dataset_is_refused():
    with pytest.raises(DatasetError, match="no option 'colour_bias'"):
        open_dataset("folder:/nonexistent", colour_bias=0.5)


def test_run_context_options_reach_only_builders_that_take_them():
    t = open_dataset("toy-shapes", seed=3, sources=["photo"], shots=1, eval_per=1)
    assert t.info["seed"] == 3
    assert "sources" not in dataset_option_names("folder:") and "seed" in dataset_option_names("folder:")


def test_every_entry_lists_options():
    for entry in list_datasets():
        names = dataset_option_names(entry.name)
        assert names and "path" not in names, entry.name
    assert {"colour_bias", "shots", "eval_per"} <= dataset_option_names("toy-shapes")
    assert "streaming" in dataset_option_names("pacs") and "max_dataset_pixels" in dataset_option_names("zip:")
