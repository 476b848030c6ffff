"""Image folders: ``root/<domain>/<class>/<img>`` (DomainBed) or ``root/<class>/<img>``, detected from the tree.

Domains and classes are the sorted folder names (DomainBed's and torchvision's order, so ``--targets`` and base
classes mean the same here as there). Hidden entries, ``__MACOSX`` and non-image files are ignored, symlinks are
never followed (a tree cannot point the loader outside itself), and an empty domain or class is an error rather
than a silently missing label.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .assemble import finish_table, templates_option
from .images import is_image_name
from .table import DatasetError, ImageTable


def _skip(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _entries(d: Path) -> tuple[list[str], list[str]]:
    """(sub-folders, image files) of ``d``: sorted, hidden/junk and symlinks left out."""
    dirs, files = [], []
    with os.scandir(d) as it:
        for e in it:
            if _skip(e.name) or e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                dirs.append(e.name)
            elif e.is_file(follow_symlinks=False) and is_image_name(e.name):
                files.append(e.name)
    return sorted(dirs), sorted(files)


def _images_under(d: Path) -> list[str]:
    """Image files anywhere below ``d`` (relative paths, sorted): a class folder may have sub-folders."""
    out = []
    for top, dirs, files in os.walk(d, followlinks=False):
        dirs[:] = sorted(x for x in dirs if not _skip(x) and not os.path.islink(os.path.join(top, x)))
        rel = os.path.relpath(top, d)
        for f in sorted(files):
            if is_image_name(f) and not os.path.islink(os.path.join(top, f)):
                out.append(f if rel == "." else os.path.join(rel, f))
    return out


def scan_folder(root: Path) -> tuple[str, dict[str, dict[str, list[str]]]]:
    """(layout, {domain: {class: [relative image paths]}}); layout is 'domains' or 'classes'."""
    if not root.is_dir():
        raise DatasetError(f"folder {root} does not exist or is not a directory")
    tops, loose = _entries(root)
    if not tops:
        raise DatasetError(f"folder {root} has no sub-folders: use root/<class>/<image> or "
                           f"root/<domain>/<class>/<image>")
    nested = {t: _entries(root / t) for t in tops}
    has_images = [t for t, (_, files) in nested.items() if files]
    has_dirs = [t for t, (dirs, _) in nested.items() if dirs]
    if has_images and not has_dirs:  # root/<class>/<img>
        return "classes", {root.name or "all": {t: [f"{t}/{f}" for f in _images_under(root / t)] for t in tops}}
    if has_images and has_dirs:
        raise DatasetError(f"folder {root} mixes layouts: {has_images[:3]} hold images directly but {has_dirs[:3]} "
                           f"hold sub-folders; use root/<class>/<image> or root/<domain>/<class>/<image>")
    tree = {}
    for dom in tops:
        tree[dom] = {c: [f"{dom}/{c}/{f}" for f in _images_under(root / dom / c)] for c in nested[dom][0]}
    return "domains", tree


def _fingerprint(root: Path, files: list[str]) -> str:
    h = hashlib.sha256(str(root.resolve()).encode())
    for f in files:
        st = os.stat(root / f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def build_folder(path: str, seed: int = 0, shots=None, max_per_class_domain=None, test_fraction=0.2,
                 split_seed=0, name: str | None = None, templates=None, max_dataset_pixels=None,
                 **_ignored) -> ImageTable:
    root = Path(os.path.expanduser(str(path)))
    layout, tree = scan_folder(root)
    domains = sorted(tree)
    classes = sorted({c for per in tree.values() for c in per})
    problems = [f"domain {d!r} ({root / d}) has no images" for d in domains
                if not any(tree[d].values())] if layout == "domains" else []
    problems += [f"class {c!r} has no images in any domain" for c in classes
                 if not any(tree[d].get(c) for d in domains)]
    if problems:
        raise DatasetError(f"folder {root} cannot be used: " + "; ".join(problems) +
                           " (add images or remove the empty folders)")
    files, labels, dom_ids = [], [], []
    for di, d in enumerate(domains):
        for ci, c in enumerate(classes):
            for f in tree[d].get(c, []):
                files.append(f)
                labels.append(ci)
                dom_ids.append(di)
    file_arr = np.asarray(files, dtype=object)

    def fetch(rows: np.ndarray) -> list:
        return [(str(file_arr[r]), str(root / file_arr[r])) for r in rows]

    info = {"source": str(root), "layout": layout}
    kw = {"templates": templates_option(templates)} if templates else {}
    if max_dataset_pixels is not None:
        kw["max_dataset_pixels"] = max_dataset_pixels
    return finish_table(name or f"folder:{root}", classes, domains, labels, dom_ids, fetch, seed=seed, shots=shots,
                        max_per_class_domain=max_per_class_domain, test_fraction=test_fraction,
                        split_seed=split_seed, info=info, fingerprint=_fingerprint(root, files), **kw)
