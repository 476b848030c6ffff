"""Hub datasets through ``datasets.load_dataset``: column mapping, class names from the label feature, streaming.

One code path for a hub id and for local data files (``path=DIR`` with the repo's parquet layout, or
``data_files=...``), so what the tests exercise offline is what runs against the Hub. Images are read as raw bytes
(``Image(decode=False)``) and decoded by our own safe decoder, which names the row when a file is bad. Streaming
(DomainNet) keeps at most ``max_per_class_domain`` rows per (class, domain) and stops as soon as every pair is full.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .assemble import bool_option, finish_table, int_option, templates_option
from .table import DatasetError, ImageTable

FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


def clean_name(name: str) -> str:
    """Class name as a prompt wants it: underscores to spaces, single spaces."""
    return " ".join(str(name).replace("_", " ").split())


def _names_option(v) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return list(v)
    raise DatasetError(f"expected a comma-separated list of names, got {v!r}")


def fetch_hint(repo: str) -> str:
    slug = repo.rstrip("/").split("/")[-1].lower() or "data"
    return (f"Fetch it on a machine with network: `hf download {repo} --repo-type dataset --local-dir data/{slug}`, "
            f"copy data/{slug} here and add `--data path=data/{slug}` (or copy a filled Hugging Face cache, "
            f"~/.cache/huggingface, here and set HF_HUB_OFFLINE=1).")


def script_dataset_message(source: str, why: str) -> str:
    """A loading-script dataset: `datasets` >= 4 refuses to run it, so say so and what loads instead."""
    return (f"{source} is a loading-script dataset, which datasets >= 4 no longer runs ({why}): use a copy stored "
            "as data files (parquet or image folders) on the Hub (--dataset hf:ORG/NAME), or a local one "
            "(--data path=DIR or --data data_files=FILE.parquet)")


def load_split(source: str, split: str, *, local: bool, config=None, data_files=None, streaming=False,
               revision=None):
    """``datasets.load_dataset`` with every failure turned into a DatasetError that says what to do."""
    import datasets

    if data_files is not None and not isinstance(data_files, dict):
        data_files = {split: data_files}
    try:
        return datasets.load_dataset(source, config, split=split, data_files=data_files, streaming=streaming,
                                     revision=revision)
    except Exception as e:  # noqa: BLE001 - datasets raises many types; each becomes one actionable message
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        if "scripts are no longer supported" in str(e):
            raise DatasetError(script_dataset_message(source, why)) from None
        if local:
            raise DatasetError(f"cannot load local data {source} (split {split!r}): {why}") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or isinstance(e, ConnectionError)
        if isinstance(e, ValueError) and "split" in str(e).lower():
            raise DatasetError(f"{source}: {why}; pick another --data split=...") from None
        head = (f"cannot reach the Hugging Face Hub for dataset {source!r} ({why})" if offline else
                f"cannot load dataset {source!r} from the Hub ({why})")
        raise DatasetError(f"{head}. {fetch_hint(source)}") from None


def _column(features, given, want_type, fallbacks, what, avoid=()):
    names = list(features or {})
    if given:
        if features is not None and given not in features:
            raise DatasetError(f"--data {what}_column: no column {given!r}; columns are {', '.join(names)}")
        return given
    for n, f in (features or {}).items():
        if type(f).__name__ == want_type and n not in avoid:
            return n
    return next((n for n in fallbacks if n in names and n not in avoid), None)


def _codes(values: list, feature, given_names, what: str) -> tuple[list[str], np.ndarray]:
    """(names, int codes) of a label or domain column: ClassLabel names, string values, or ints + given names."""
    if type(feature).__name__ == "ClassLabel":
        names = list(given_names or feature.names)
        codes = np.asarray(values, dtype=np.int64)
    elif values and isinstance(values[0], str):
        names = sorted(set(values))
        pos = {v: i for i, v in enumerate(names)}
        codes = np.asarray([pos[v] for v in values], dtype=np.int64)
    else:
        codes = np.asarray(values, dtype=np.int64)
        top = int(codes.max(initial=-1)) + 1
        names = list(given_names) if given_names else [str(i) for i in range(top)]
    if len(codes) and codes.max(initial=0) >= len(names):
        raise DatasetError(f"{what} ids go up to {int(codes.max())} but only {len(names)} {what} names are known; "
                           f"pass --data {what}_names=a,b,...")
    return names, codes


def _stream_rows(splits, img, lab, dom, cap, max_rows, k_known, d_known):
    """Iterate streamed splits keeping <= cap rows per (class, domain) of each split; a split stops being read
    as soon as every pair is full (when the class and domain counts are known) or after ``max_rows`` rows."""
    rows = []
    for si, ds in enumerate(splits):
        counts: dict = {}
        full = 0
        for i, r in enumerate(ds):
            y, d = r[lab], (r[dom] if dom else 0)
            if y is not None and not (isinstance(y, int) and y < 0) and counts.get((y, d), 0) < cap:
                counts[(y, d)] = counts.get((y, d), 0) + 1
                full += counts[(y, d)] == cap
                rows.append((si, y, d, r[img], i))
            if (max_rows and i + 1 >= max_rows) or (k_known and d_known and full == k_known * d_known):
                break
    return rows


def _source(repo: str, path, data_files) -> tuple[str, object, bool]:
    """(``load_dataset`` path, data_files, is local): a hub id, a local repo folder, or a builder + data files."""
    repo_path = Path(os.path.expanduser(str(repo)))
    local = bool(path or data_files) or repo_path.exists()
    source = str(Path(os.path.expanduser(str(path)))) if path else (str(repo_path) if local else repo)
    if local and Path(source).is_file():
        return FILE_BUILDERS.get(Path(source).suffix.lower(), "parquet"), source, True
    if data_files and not path:
        first = data_files if isinstance(data_files, str) else next(iter(
            data_files.values() if isinstance(data_files, dict) else data_files))
        first = first if isinstance(first, str) else first[0]
        return FILE_BUILDERS.get(Path(first).suffix.lower(), "parquet"), data_files, True
    return source, data_files, local


def _hub_only(repo: str, path, data_files) -> str:
    """A public server's hub id: never a path on its disk (``datasets`` would load ``owner/name`` from the working
    directory if such a folder existed), and one message whether or not such a path exists."""
    if path or data_files or "\\" in repo or repo.startswith((".", "/", "~")) or Path(repo).exists():
        raise DatasetError(hub_unavailable(repo))
    return repo


def hub_unavailable(repo: str) -> str:
    return (f"cannot load dataset {repo!r} from the Hugging Face Hub: it does not exist, is private or gated, or "
            f"the Hub cannot be reached from this server")


def _read_stream(parts, feats, split_names, img, lab, dom, cap, max_rows, domain_names):
    """(label values, domain values, is_test, fetch) of a capped stream; the kept images stay in memory."""
    if not cap:
        raise DatasetError("streaming needs --data max_per_class_domain=N (or --data streaming=false)")
    lab_f, dom_f = feats[lab], feats[dom] if dom else None
    k = len(lab_f.names) if type(lab_f).__name__ == "ClassLabel" else 0
    d = (len(dom_f.names) if type(dom_f).__name__ == "ClassLabel" else len(domain_names or [])) if dom else 1
    got = _stream_rows(parts, img, lab, dom, cap, max_rows, k, d)
    blobs, where = [g[3] for g in got], [g[4] for g in got]
    is_test = np.asarray([g[0] == 1 for g in got], dtype=bool)

    def fetch(rows):
        return [(f"{split_names[int(is_test[r])]} row {where[r]}", blobs[r].get("bytes") or blobs[r].get("path"))
                for r in rows]
    return [g[1] for g in got], [g[2] for g in got], is_test, fetch


def _read_arrow(parts, split_names, img, lab, dom):
    """(label values, domain values, is_test, fetch) of downloaded splits; images are read row by row on demand."""
    from datasets import concatenate_datasets

    offsets = np.cumsum([0] + [len(p) for p in parts])
    ds = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    is_test = np.arange(len(ds)) >= offsets[1]

    def fetch(rows):
        items = ds[[int(r) for r in rows]][img] if len(rows) else []
        return [(f"{split_names[int(is_test[r])]} row {int(r - offsets[int(is_test[r])])}"
                 + (f" ({it['path']})" if it.get("path") else ""), it.get("bytes") or it.get("path"))
                for r, it in zip(rows, items)]
    return list(ds[lab]), (list(ds[dom]) if dom else [0] * len(ds)), is_test, fetch


def _drop(raw_classes: list[str], labels: np.ndarray, drop: set[str]) -> tuple[list[str], np.ndarray]:
    """Remove classes by (cleaned, case-insensitive) name; their rows get label -1."""
    dropped = [i for i, c in enumerate(raw_classes) if clean_name(c).lower() in drop]
    kept = [i for i in range(len(raw_classes)) if i not in dropped]
    remap = np.full(len(raw_classes), -1)
    remap[kept] = np.arange(len(kept))
    return [raw_classes[i] for i in kept], np.where(labels >= 0, remap[np.clip(labels, 0, None)], -1)


def _open_parts(repo, path, data_files, config, split_names, streaming, revision, hub_only):
    """(source, local, one dataset per split name); on a public server (``hub_only``) hub ids only, with errors
    that reveal nothing local."""
    if hub_only:
        source, local = _hub_only(repo, path, data_files), False
    else:
        source, data_files, local = _source(repo, path, data_files)
    try:
        return source, local, [load_split(source, s, local=local, config=config, data_files=data_files,
                                          streaming=streaming, revision=revision) for s in split_names]
    except DatasetError:
        if hub_only:
            raise DatasetError(hub_unavailable(repo)) from None
        raise


def _classes_and_domains(label_vals, dom_vals, feats, lab, dom, class_names, domain_names, drop: set[str]):
    """(class names, labels, domain names, domain ids): domains without rows left out, ``drop`` classes removed
    (label -1), names cleaned unless cleaning would merge two classes."""
    raw_classes, labels = _codes(label_vals, feats[lab], _names_option(class_names), "class")
    if dom:
        domains, dom_ids = _codes(dom_vals, feats[dom], domain_names, "domain")
        used = np.unique(dom_ids)  # domains named by the feature but without rows are left out
        remap = np.full(len(domains), -1)
        remap[used] = np.arange(len(used))
        domains, dom_ids = [str(domains[u]) for u in used], remap[dom_ids]
    else:
        domains, dom_ids = ["all"], np.zeros(len(labels), dtype=np.int64)
    if drop:
        raw_classes, labels = _drop(raw_classes, labels, drop)
    classes = [clean_name(c) for c in raw_classes]
    if len(set(classes)) < len(classes):  # cleaning would merge two classes: keep the raw names
        classes = [str(c) for c in raw_classes]
    return classes, labels, domains, dom_ids


def build_hub(repo: str, *, path=None, data_files=None, config=None, split="train", test_split=None,
              image_column=None, label_column=None, domain_column=None, class_names=None, domain_names=None,
              drop_classes=None, streaming=False, revision=None, max_rows=None, seed=0, shots=None,
              max_per_class_domain=None, test_fraction=0.2, split_seed=0, templates=("a photo of a {}.",),
              name=None, hub_only=False, **_ignored) -> ImageTable:
    from datasets import Image

    streaming = bool_option("streaming", streaming)
    split_names = [split] + ([test_split] if test_split else [])
    source, local, parts = _open_parts(repo, path, data_files, config, split_names, streaming, revision,
                                       bool_option("hub_only", hub_only))
    feats = parts[0].features
    img = _column(feats, image_column, "Image", ("image", "img", "jpg", "png"), "image")
    dom = _column(feats, domain_column, "", ("domain", "env", "environment"), "domain")
    lab = _column(feats, label_column, "ClassLabel", ("label", "labels", "class", "fine_label"), "label",
                  avoid=(dom,))
    if img is None or lab is None:
        raise DatasetError(f"{source}: cannot tell the image/label columns among {', '.join(feats or {})}; pass "
                           f"--data image_column=... --data label_column=...")
    parts = [p.select_columns([c for c in (img, lab, dom) if c]).cast_column(img, Image(decode=False)) for p in parts]
    domain_names = _names_option(domain_names)
    if streaming:
        cap = int_option("max_per_class_domain", max_per_class_domain, 1)
        label_vals, dom_vals, is_test, fetch_rows = _read_stream(parts, feats, split_names, img, lab, dom, cap,
                                                                 int_option("max_rows", max_rows), domain_names)
        fingerprint = ["stream", source, config, revision, split_names, img, lab, dom, cap, max_rows]
        max_per_class_domain = None  # already applied while streaming
    else:
        label_vals, dom_vals, is_test, fetch_rows = _read_arrow(parts, split_names, img, lab, dom)
        fingerprint = [[p._fingerprint for p in parts], img, lab, dom]

    drop = {clean_name(x).lower() for x in (_names_option(drop_classes) or [])}
    classes, labels, domains, dom_ids = _classes_and_domains(label_vals, dom_vals, feats, lab, dom, class_names,
                                                             domain_names, drop)
    rows = np.flatnonzero(labels >= 0)

    def fetch(sel):  # table rows -> dataset rows
        return fetch_rows(rows[np.asarray(sel, dtype=np.int64)])

    info = {"source": repo, "loaded_from": source if local else repo, "split": split, "test_split": test_split,
            "columns": {"image": img, "label": lab, "domain": dom}, "revision": revision,
            "streaming": streaming}
    return finish_table(name or f"hf:{repo}", classes, domains, labels[rows], dom_ids[rows], fetch, seed=seed,
                        shots=shots, max_per_class_domain=max_per_class_domain, test_fraction=test_fraction,
                        split_seed=split_seed, fixed_test=is_test[rows] if test_split else None,
                        templates=templates_option(templates), info=info,
                        fingerprint=fingerprint + [sorted(drop), classes, domains])
