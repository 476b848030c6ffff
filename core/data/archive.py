"""Zip uploads, unpacked safely into a cache folder keyed by the zip's sha256, then loaded as an image folder.

Zips come from strangers (a public Space), so the whole central directory is checked before one byte is written:
absolute names, ``..``, drive letters, symlink and encrypted entries reject the zip; entry count and declared total
size are capped, and the disk actually used is counted again while writing (a header may lie; a one-byte file
takes a 4 KiB block), against the smaller of the zip cap and the cache quota (``core/data/quota.py``). Hidden files,
``__MACOSX`` and anything that is not an image by extension are skipped; files are created exclusively inside a
private temp folder that is renamed into place only when complete, so a failed unpack leaves nothing behind, and a
zip whose images are then refused is removed again. Unpacked zips are evicted least recently used first.
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

from . import quota
from .assemble import int_option
from .cache import cache_root
from .folder import _entries, build_folder
from .images import is_image_name
from .table import DatasetError, ImageTable

MAX_FILES = 100_000  # entries in the central directory (directories and junk included)
MAX_BYTES = 8 << 30  # disk taken by the images unpacked (and never more than the cache quota)
MAX_ENTRY_BYTES = 100 << 20  # one image file; a 50 Mpx RGB PNG of noise is ~150 MB, any real one far less
MAX_DEPTH = 32  # folders in an entry's path (a 2,100-deep path is an OS error, not a dataset)
MAX_PATH_CHARS = 1024
MAX_LISTED = 10
CHUNK = 1 << 20
BLOCK = 4096


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
        if len(parts) > MAX_DEPTH or len(info.filename) > MAX_PATH_CHARS:
            raise DatasetError(f"zip refused: {info.filename[:60]!r}... is nested {len(parts)} folders deep "
                               f"({len(info.filename)} characters); at most {MAX_DEPTH} levels are allowed")
        if info.file_size > MAX_ENTRY_BYTES:
            raise DatasetError(f"zip refused: {info.filename[:80]!r} is {info.file_size} bytes; an image may have "
                               f"at most {MAX_ENTRY_BYTES}")
        rel = "/".join(parts)
        if rel.lower() in seen:
            raise DatasetError(f"zip refused: duplicate entry {info.filename!r} (names differ only in case?)")
        seen.add(rel.lower())
        total += info.file_size
        plan.append((info, rel))
    if total > max_bytes:
        raise DatasetError(f"zip expands to {total} bytes; at most {max_bytes} are allowed")
    return plan, skipped


def _blocks(n: int) -> int:
    return max(1, -(-n // BLOCK)) * BLOCK


def _unpack(zf: zipfile.ZipFile, plan, dest: Path, max_bytes: int) -> None:
    """Write the planned entries, counting disk use (blocks, folders) as written; a DatasetError past the cap."""
    written = 0
    root = dest.resolve()
    made: set[Path] = set()
    for info, rel in plan:
        target = (dest / rel).resolve()
        if root not in target.parents:  # belt and braces: plan_zip already refused every escape
            raise DatasetError(f"zip refused: {info.filename!r} resolves outside the unpack folder")
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
            written += BLOCK
        with zf.open(info) as src, open(target, "xb") as out:
            n = 0
            for block in iter(lambda: src.read(CHUNK), b""):
                n += len(block)
                if written + _blocks(n) > max_bytes or n > info.file_size:
                    raise DatasetError(f"zip refused: {info.filename!r} inflates past its declared size or the "
                                       f"{max_bytes}-byte disk cap for unpacked zips (zip bomb?)")
                out.write(block)
        written += _blocks(n)


def unzip_cached(path: Path, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> tuple[Path, int]:
    """Folder holding the zip's images (unpacked once per content hash) and the count of skipped junk entries."""
    if not path.is_file():
        raise DatasetError(f"zip {path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is not a zip file")
    base = (cache_root() or Path(tempfile.gettempdir()) / "clipood-cache") / "zips"
    dest = base / sha256_file(path)[:32]
    max_bytes = min(max_bytes, quota.quota() or max_bytes)
    try:
        with zipfile.ZipFile(path) as zf:
            plan, skipped = plan_zip(zf, max_files, max_bytes)
            if (dest / ".complete").is_file():
                quota.touch(dest / ".complete")
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
    except OSError as e:  # e.g. a path the file system refuses, or a full disk
        raise DatasetError(f"zip {path.name} cannot be unpacked here ({type(e).__name__}: {e.strerror or e})") \
            from None
    quota.trim(base.parent, keep=(dest,))
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
    try:
        table = build_folder(str(root), **options)
    except DatasetError:
        if not quota.pinned(folder):  # refused: its unpacked files go (another live dataset may still use them)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    quota.pin(table, folder)
    table.info.update(source=str(zpath), unpacked_to=str(root), skipped_entries=skipped)
    return table
