"""Issue 17, disk: unpacked zips count their real disk use while writing, a refused dataset leaves nothing behind,
the zip cache stays within its quota (least recently used first, live datasets pinned) and odd paths get a one-line
error. Everything runs under a temporary cache folder."""

import gc
import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.data import open_dataset, quota
from core.data.table import DatasetError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("CLIPOOD_CACHE", str(root))
    before = quota.quota()
    yield root
    quota.set_quota(before)


def _png(colour) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(b, "PNG")
    return b.getvalue()


def image_zip(path: Path, tag: int = 0, n: int = 6) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for c in ("cat", "dog"):
            for i in range(n):
                zf.writestr(f"{c}/{i}.png", _png((tag, 10 * i, 99 if c == "cat" else 9)))
    return path


def zips_left(root: Path) -> list[str]:
    d = root / "zips"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def junk_zip(path: Path, n: int, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"{'ab'[i % 2]}/{i}.png", payload)
    return path


def assert_refused_leaving_nothing(cache: Path, z: Path, match: str) -> str:
    with pytest.raises(DatasetError, match=match) as e:
        open_dataset(f"zip:{z}")
    assert zips_left(cache) == []
    return str(e.value)


def test_one_byte_entries_are_counted_by_the_disk_they_take(cache, tmp_path):
    """2,000 one-byte 'images' declare 2 kB but take 8 MB of blocks: refused while writing, nothing left."""
    quota.set_quota(4 << 20)
    assert_refused_leaving_nothing(cache, junk_zip(tmp_path / "many.zip", 2000, b"x"), "disk cap")


def test_a_huge_entry_is_refused_before_it_is_written(cache, tmp_path):
    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/0.png", _png(1))
        zf.writestr("b/zero.png", bytes(120 << 20))
    assert z.stat().st_size < 1 << 20
    assert_refused_leaving_nothing(cache, z, "an image may have at most")


def test_a_refused_dataset_leaves_no_unpacked_files(cache, tmp_path):
    """Before: the images were unpacked, the dataset refused as undecodable, and the folder stayed forever."""
    assert_refused_leaving_nothing(cache, junk_zip(tmp_path / "junk.zip", 40, b"not an image"), "cannot be read")


def test_the_zip_cache_keeps_its_quota_least_recently_used_first(cache, tmp_path):
    live = open_dataset(f"zip:{image_zip(tmp_path / 'z0.zip', 0)}")  # stays alive: pinned
    one = quota.usage(cache)
    quota.set_quota(int(2.5 * one))
    for k in range(1, 5):
        t = open_dataset(f"zip:{image_zip(tmp_path / f'z{k}.zip', k)}")
        del t
        gc.collect()
    assert quota.usage(cache) <= quota.quota()
    assert Path(live.info["unpacked_to"]).is_dir() and len(live.load([0, 1])) == 2
    assert len(zips_left(cache)) <= 3


def test_a_very_deep_path_is_a_one_line_error(cache, tmp_path):
    z = tmp_path / "deep.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a/0.png", _png(1))
        zf.writestr("/".join(["d"] * 2100) + "/x.png", _png(2))
    assert "\n" not in assert_refused_leaving_nothing(cache, z, "nested 2101 folders deep")
