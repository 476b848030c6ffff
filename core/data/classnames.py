"""Class names as CoOp evaluates them, with attribution, and the label order CoOp's halves are taken in.

Hub copies label classes by their folder names ("AnnualCrop", "Faces", "1".."102"); CoOp (KaiyangZhou/CoOp) renames
some and numbers classes by its own rule, and its base/new halves follow that numbering. :func:`coop_classes`
renames and reorders a hub table the same way, so zero-shot runs on words and ``ceil(K/2)`` base classes are CoOp's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .table import ImageTable

COOP = "KaiyangZhou/CoOp@ff61507"
# KaiyangZhou/CoOp datasets/eurosat.py:10-21 (NEW_CNAMES)
EUROSAT = {"AnnualCrop": "Annual Crop Land", "Forest": "Forest", "HerbaceousVegetation": "Herbaceous Vegetation Land",
           "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
           "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings", "River": "River",
           "SeaLake": "Sea or Lake"}
# KaiyangZhou/CoOp datasets/caltech101.py:10 (IGNORED) and :11-16 (NEW_CNAMES)
CALTECH_IGNORED = ("BACKGROUND_Google", "Faces_easy")
CALTECH = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
# Oxford Flowers-102 names of categories 1..102, from openai/CLIP data/prompts.md:1325-1426 (commit d05afc4).
# CoOp reads the same names from a cat_to_name.json it downloads (KaiyangZhou/CoOp DATASETS.md:94; not in the repo).
FLOWERS = [
    'pink primrose', 'hard-leaved pocket orchid', 'canterbury bells', 'sweet pea', 'english marigold', 'tiger lily',
    'moon orchid', 'bird of paradise', 'monkshood', 'globe thistle', 'snapdragon', "colt's foot", 'king protea',
    'spear thistle', 'yellow iris', 'globe flower', 'purple coneflower', 'peruvian lily', 'balloon flower',
    'giant white arum lily', 'fire lily', 'pincushion flower', 'fritillary', 'red ginger', 'grape hyacinth',
    'corn poppy', 'prince of wales feathers', 'stemless gentian', 'artichoke', 'sweet william', 'carnation',
    'garden phlox', 'love in the mist', 'mexican aster', 'alpine sea holly', 'ruby-lipped cattleya', 'cape flower',
    'great masterwort', 'siam tulip', 'lenten rose', 'barbeton daisy', 'daffodil', 'sword lily', 'poinsettia',
    'bolero deep blue', 'wallflower', 'marigold', 'buttercup', 'oxeye daisy', 'common dandelion', 'petunia',
    'wild pansy', 'primula', 'sunflower', 'pelargonium', 'bishop of llandaff', 'gaura', 'geranium', 'orange dahlia',
    'pink and yellow dahlia', 'cautleya spicata', 'japanese anemone', 'black-eyed susan', 'silverbush',
    'californian poppy', 'osteospermum', 'spring crocus', 'bearded iris', 'windflower', 'tree poppy', 'gazania',
    'azalea', 'water lily', 'rose', 'thorn apple', 'morning glory', 'passion flower', 'lotus', 'toad lily',
    'anthurium', 'frangipani', 'clematis', 'hibiscus', 'columbine', 'desert-rose', 'tree mallow', 'magnolia',
    'cyclamen', 'watercress', 'canna lily', 'hippeastrum', 'bee balm', 'air plant', 'foxglove', 'bougainvillea',
    'camellia', 'mallow', 'mexican petunia', 'bromelia', 'blanket flower', 'trumpet creeper', 'blackberry lily',
]


def _key(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


@dataclass(frozen=True)
class ClassSpec:
    """How CoOp names and numbers one dataset's classes (``order``: sort key of CoOp's folder name)."""

    rename: dict = field(default_factory=dict)  # CoOp folder name -> CoOp class name
    order: str = "folder"  # folder: Python's sort of folder names (dtd.py:62-64) | lower | number
    source: str = ""

    def coop_folder(self, raw: str) -> str:
        """The CoOp folder name a hub class stands for (matched case- and separator-insensitively)."""
        return {_key(k): k for k in self.rename}.get(_key(raw), raw)

    def sort_key(self, raw: str) -> tuple:
        folder = self.coop_folder(raw).replace(" ", "_")  # hub names were cleaned: the folder had underscores
        if self.order == "number":
            return (0, int(folder), "") if folder.isdigit() else (1, 0, folder)
        return (0, 0, folder.lower() if self.order == "lower" else folder)

    def name(self, raw: str, cleaned: str) -> str:
        return self.rename.get(self.coop_folder(raw), cleaned)


SPECS = {
    "eurosat": ClassSpec(EUROSAT, "folder", f"{COOP} datasets/eurosat.py:10-21, order dtd.py:62-64"),
    "caltech101": ClassSpec(CALTECH, "folder", f"{COOP} datasets/caltech101.py:10-16, order dtd.py:62-64"),
    "flowers102": ClassSpec({str(i + 1): n for i, n in enumerate(FLOWERS)}, "number",
                            f"openai/CLIP data/prompts.md:1325-1426; order: CoOp label = category - 1 "
                            f"({COOP} datasets/oxford_flowers.py:71)"),
    "oxford-pets": ClassSpec({}, "lower", f"{COOP} datasets/oxford_pets.py:64-70 (label = class id, "
                                          "breed names lower-cased)"),
    "dtd": ClassSpec({}, "folder", f"{COOP} datasets/dtd.py:62-64"),
    "food101": ClassSpec({}, "folder", f"{COOP} datasets/food101.py:27 -> dtd.py:62-64"),
}


def coop_classes(table: ImageTable, dataset: str, raw: list[str] | None = None) -> ImageTable:
    """Rename and renumber ``table``'s classes as CoOp does for ``dataset`` (no-op for datasets without a spec).

    ``raw``: the hub's own label names, when the table's cleaned names lost their case or separators.
    """
    spec = SPECS.get(dataset)
    if spec is None:
        return table
    raw = list(raw or table.classes)
    order = sorted(range(len(raw)), key=lambda i: spec.sort_key(raw[i]))
    new_of_old = np.empty(len(order), dtype=np.int64)
    new_of_old[order] = np.arange(len(order))
    table.classes = [spec.name(raw[i], table.classes[i]) for i in order]
    table.labels = new_of_old[table.labels]
    table.info = {**table.info, "class_names": spec.source}
    return table
