"""Zip uploads, unpacked safely into a cache folder keyed by the zip's sha256, then loaded as an image folder.

Zips come from strangers (a public Space), so the whole central directory is checked before one byte is written:
absolute names, ``..``, drive letters, symlink and encrypted entries reject the zip; entry count and declared total
size are capped, and the bytes actually inflated are counted again while writing (a header may lie). Hidden files,
``__MACOSX`` and anything that is not an image by extension are skipped; files are created exclusively inside a
private temp folder that is renamed into place only when complete, so a failed unpack leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from .assemble import int_option
from .cache import cache_root
from .folder import _entries, build_folder
from .images import is_image_name
from .table import DatasetError, ImageTable

MAX_FILES = 100_000  # entries in the central directory (directories and junk included)
MAX_BYTES = 8 << 30  # total uncompressed bytes of the images unpacked
MAX_LISTED = 10
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if "\0" in name:
        return "NUL in name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted entry"
    return None


def plan_zip(zf: zipfile.ZipFile, max_files: int, max_bytes: int) -> tuple[list[tuple[zipfile.ZipInfo, str]], int]:
    """The (entry, safe relative path) pairs to unpack and the number skipped as junk; or a DatasetError."""
    infos = zf.infolist()
    if len(infos) > max_files:
        raise DatasetError(f"zip has {len(infos)} entries; at most {max_files} are allowed")
    bad = [f"{i.filename!r} ({why})" for i in infos if (why := _unsafe(i))]
    if bad:
        shown = ", ".join(bad[:MAX_LISTED]) + (f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else "")
        raise DatasetError(f"zip refused: unsafe entries {shown}; re-create the zip from a plain folder of images")
    plan, seen, skipped, total = [], set(), 0, 0
    for info in infos:
        parts = [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")]
        if info.is_dir() or not parts:
            continue
        if any(p.startswith(".") or p == "__MACOSX" for p in parts) or not is_image_name(parts[-1]):
            skipped += 1
            continue
        if any(len(p.encode()) > 255 for p in parts):
            raise DatasetError(f"zip refused: name too long: {info.filename[:80]!r}...")
        rel = "/".join(parts)
        if rel.lower() in seen:
            raise DatasetError(f"zip refused: duplicate entry {info.filename!r} (names differ only in case?)")
        seen.add(rel.lower())
        total += info.file_size
        plan.append((info, rel))
    if total > max_bytes:
        raise DatasetError(f"zip expands to {total} bytes; at most {max_bytes} are allowed")
    return plan, skipped


def _unpack(zf: zipfile.ZipFile, plan, dest: Path, max_bytes: int) -> None:
    written = 0
    root = dest.resolve()
    for info, rel in plan:
        target = (dest / rel).resolve()
        if root not in target.parents:  # belt and braces: plan_zip already refused every escape
            raise DatasetError(f"zip refused: {info.filename!r} resolves outside the unpack folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "xb") as out:
            n = 0
            for block in iter(lambda: src.read(CHUNK), b""):
                n += len(block)
                written += len(block)
                if written > max_bytes or n > info.file_size:
                    raise DatasetError(f"zip refused: {info.filename!r} inflates past its declared size or the "
                                       f"{max_bytes}-byte total cap (zip bomb?)")
                out.write(block)


def unzip_cached(path: Path, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> tuple[Path, int]:
    """Folder holding the zip's images (unpacked once per content hash) and the count of skipped junk entries."""
    if not path.is_file():
        raise DatasetError(f"zip {path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is not a zip file")
    base = (cache_root() or Path(tempfile.gettempdir()) / "clipood-cache") / "zips"
    dest = base / sha256_file(path)[:32]
    try:
        with zipfile.ZipFile(path) as zf:
            plan, skipped = plan_zip(zf, max_files, max_bytes)
            if (dest / ".complete").is_file():
                return dest, skipped
            if not plan:
                raise DatasetError(f"zip {path.name} holds no images ({skipped} other entries skipped)")
            base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=base))
            try:
                _unpack(zf, plan, tmp, max_bytes)
                (tmp / ".complete").write_text(str(len(plan)))
                try:
                    os.replace(tmp, dest)
                except OSError:  # another process finished the same zip first
                    if not (dest / ".complete").is_file():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as e:
        raise DatasetError(f"zip {path.name} is damaged or unsupported ({type(e).__name__}: {e})") from None
    return dest, skipped


def data_root(folder: Path) -> Path:
    """Descend through wrapper folders (``archive/PACS/...``) to the first level with more than one entry."""
    while True:
        dirs, files = _entries(folder)
        if len(dirs) == 1 and not files:
            folder = folder / dirs[0]
        else:
            return folder


def build_zip(path: str, max_files=MAX_FILES, max_bytes=MAX_BYTES, **options) -> ImageTable:
    zpath = Path(os.path.expanduser(str(path)))
    folder, skipped = unzip_cached(zpath, int_option("max_files", max_files, 1, False),
                                   int_option("max_bytes", max_bytes, 1, False))
    root = data_root(folder)
    options.setdefault("name", f"zip:{zpath.name}")
    table = build_folder(str(root), **options)
    table.info.update(source=str(zpath), unpacked_to=str(root), skipped_entries=skipped)
    return table
