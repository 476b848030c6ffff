"""CoOp's class names and numbering applied to hub tables, whatever case or separators the hub copy uses."""

import numpy as np

from core.data.classnames import CALTECH, EUROSAT, coop_classes
from core.data.table import ImageTable


def _table(classes):
    labels = np.repeat(np.arange(len(classes)), np.arange(1, len(classes) + 1))  # class k has k + 1 rows
    n = len(labels)
    return ImageTable("t", list(classes), ["all"], labels, np.zeros(n, int), np.zeros(n, bool), lambda i: [])


def _sizes(t):
    return {c: int((t.labels == i).sum()) for i, c in enumerate(t.classes)}


def test_caltech_lowercased_copy_gets_coops_upper_case_first_order_and_names():
    t = coop_classes(_table(["accordion", "airplanes", "faces", "leopards"]), "caltech101")
    assert t.classes == [CALTECH["Faces"], CALTECH["Leopards"], "accordion", CALTECH["airplanes"]]
    assert _sizes(t) == {CALTECH["Faces"]: 3, CALTECH["Leopards"]: 4, "accordion": 1, CALTECH["airplanes"]: 2}


def test_pets_are_numbered_case_insensitively_like_the_official_class_ids():
    t = coop_classes(_table(["Abyssinian", "Bengal", "american bulldog"]), "oxford-pets")
    assert t.classes == ["Abyssinian", "american bulldog", "Bengal"]
    assert _sizes(t) == {"Abyssinian": 1, "american bulldog": 3, "Bengal": 2}


def test_eurosat_names_and_unknown_datasets_untouched():
    t = coop_classes(_table(["SeaLake", "AnnualCrop", "Forest"]), "eurosat")
    assert t.classes == [EUROSAT["AnnualCrop"], EUROSAT["Forest"], EUROSAT["SeaLake"]]
    same = _table(["b", "a"])
    assert coop_classes(same, "pacs").classes == ["b", "a"]
