"""Real-data registry entries: ``folder:``/``zip:``/``hf:`` schemes and the paper's benchmark presets.

Imported lazily by ``registry._load_plugins`` (it pulls in ``datasets`` and PIL only when a real dataset is used).
Every hub preset is ``build_hub`` with a repo id and its prompt templates; ``--data path=DIR`` (a local copy in the
repo's file layout) or ``--data data_files=...`` replaces the download and runs the very same code. Hub ids and
their column layouts are as seen in public code and could not be checked from here.
"""

from __future__ import annotations

from functools import partial

from .archive import build_zip
from .classnames import CALTECH_IGNORED, coop_classes
from .folder import build_folder
from .hub import build_hub
from .registry import DatasetEntry, register_dataset
from .table import DatasetError

# CoOp's per-dataset prompts (CLIPood converter_dassl.py CUSTOM_TEMPLATES); DomainBed tasks use "a photo of a {}."
COOP_TEMPLATES = {
    "eurosat": "a centered satellite photo of {}.",
    "dtd": "{} texture.",
    "oxford-pets": "a photo of a {}, a type of pet.",
    "flowers102": "a photo of a {}, a type of flower.",
    "caltech101": "a photo of a {}.",
    "food101": "a photo of {}, a type of food.",
}
# DomainBed's domain order (sorted folder names), used when a hub column stores domains as bare integers.
DOMAINNET_DOMAINS = "clipart,infograph,painting,quickdraw,real,sketch"

DOMAIN_SHIFT = {  # name: (repo, description, extra build options, user-visible defaults)
    "pacs": ("flwrlabs/pacs", "PACS: 4 domains (art_painting, cartoon, photo, sketch), 7 classes, 9,991 images",
             {}, {}),
    "office-home": ("flwrlabs/office-home", "OfficeHome: 4 domains (Art, Clipart, Product, Real World), 65 classes",
                    {}, {}),
    "domainnet": ("wltjr1007/DomainNet", "DomainNet: 6 domains, 345 classes, train + test splits; streamed, capped "
                  "per class and domain (--data max_per_class_domain=N, default 10); rows are ordered by domain, so "
                  "even a small cap reads nearly the whole stream", {"domain_names": DOMAINNET_DOMAINS},
                  {"streaming": True, "max_per_class_domain": 10, "test_split": "test"}),
}
OPEN_CLASS = {  # name: (repo, description, extra build options, test split or None for an 80/20 hold-out)
    "eurosat": ("tanganke/eurosat", "EuroSAT (CoOp base-to-new): 10 land-use classes, satellite photos", {}, "test"),
    "dtd": ("tanganke/dtd", "DTD (CoOp base-to-new): 47 texture classes", {}, "test"),
    "oxford-pets": ("timm/oxford-iiit-pet", "Oxford-IIIT Pets (CoOp base-to-new): 37 breeds", {}, "test"),
    "flowers102": ("nelorth/oxford-flowers", "Oxford Flowers-102 (CoOp base-to-new): 102 flower classes, named "
                   "from their folder numbers", {}, "test"),
    "caltech101": ("flwrlabs/caltech101", "Caltech-101 (CoOp base-to-new): 100 object classes "
                   "(background and Faces_easy dropped as in CoOp); one train split, 80/20 hold-out",
                   {"drop_classes": ",".join((*CALTECH_IGNORED, "background"))}, None),
    "food101": ("ethz/food101", "Food-101 (CoOp base-to-new): 101 dishes", {}, "validation"),
}
FOLDER_PRESETS = {  # name: (DomainBed folder name, description)
    "vlcs": ("VLCS", "VLCS: 4 domains (Caltech101, LabelMe, SUN09, VOC2007), 5 classes; DomainBed folder, "
             "needs --data root=PATH"),
    "terra-incognita": ("terra_incognita", "TerraIncognita: 4 camera-trap locations, 10 classes; DomainBed folder, "
                        "needs --data root=PATH"),
}


def _hf_scheme(path: str, **options):
    return build_hub(path, **options)


def _domainbed_folder(name: str, folder: str, root=None, path=None, **options):
    where = root or path
    if not where:
        raise DatasetError(f"{name} is read from DomainBed's folder layout: download it with DomainBed's script "
                           f"(`python -m domainbed.scripts.download --data_dir ./data`, "
                           f"facebookresearch/DomainBed), then add --data root=./data/{folder}")
    return build_folder(where, name=name, **options)


def _hub_preset(repo: str, name: str, extra: dict, **options):
    return coop_classes(build_hub(repo, name=name, **{**extra, **options}), name)


def register_all() -> None:
    register_dataset(DatasetEntry("folder:", "image folder: root/<domain>/<class>/<img> (DomainBed) or "
                                  "root/<class>/<img>", build_folder, "scheme"))
    register_dataset(DatasetEntry("zip:", "zip of an image folder (either layout), unpacked safely into the cache",
                                  build_zip, "scheme", option_source=(build_zip, build_folder)))
    register_dataset(DatasetEntry("hf:", "any Hugging Face image dataset (ORG/NAME or a local data folder); map "
                                  "columns with --data image_column=/label_column=/domain_column=",
                                  _hf_scheme, "scheme", option_source=(build_hub,)))
    for name, (repo, desc, extra, defaults) in DOMAIN_SHIFT.items():
        register_dataset(DatasetEntry(name, f"{desc} [{repo}]", partial(_hub_preset, repo, name, extra), "hub",
                                      {"split": "train", **defaults}, option_source=(build_hub,)))
    for name, (repo, desc, extra, test_split) in OPEN_CLASS.items():
        register_dataset(DatasetEntry(name, f"{desc} [{repo}]", partial(
            _hub_preset, repo, name, {**extra, "templates": (COOP_TEMPLATES[name],)}), "hub",
            {"split": "train", "test_split": test_split, "shots": 16}, option_source=(build_hub,)))
    for name, (folder, desc) in FOLDER_PRESETS.items():
        build = partial(_domainbed_folder, name, folder)
        register_dataset(DatasetEntry(name, desc, build, "folder", option_source=(build, build_folder)))


register_all()
