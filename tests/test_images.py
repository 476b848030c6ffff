"""Issue 17, memory: decoding is bounded whatever the file (reduced while decoding, per-image and per-dataset pixel
budgets, batches sized by bytes). Peak memory is measured in a fresh subprocess."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.data.images import DECODE_SIDE, BadImage, decode_image, rows_per_batch, target_size

ROOT = Path(__file__).resolve().parent.parent


def _png(size, mode="1") -> bytes:
    b = io.BytesIO()
    Image.new(mode, size).save(b, "PNG")
    return b.getvalue()


def test_a_huge_image_decodes_small_and_says_what_it_cost():
    im = decode_image(_png((7000, 7000)), "bomb.png")
    assert im.mode == "RGB" and im.size == (DECODE_SIDE, DECODE_SIDE)
    assert im.info["decoded_pixels"] == 7000 * 7000
    wide = decode_image(_png((6000, 1000), "RGB"), "wide.png")
    assert max(wide.size) <= 2 * DECODE_SIDE and min(wide.size) <= DECODE_SIDE
    jpg = io.BytesIO()
    Image.new("RGB", (4000, 3000), (200, 10, 10)).save(jpg, "JPEG")
    small = decode_image(jpg.getvalue(), "x.jpg")
    assert small.size == (597, 448) and small.info["decoded_pixels"] < 4000 * 3000 / 4  # JPEG draft (DCT scaling)
    assert decode_image(_png((30, 20), "RGB"), "tiny.png").size == (30, 20)  # never enlarged


def test_exif_orientation_is_applied_after_reducing():
    b = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.new("RGB", (1200, 600), (0, 0, 255)).save(b, "JPEG", exif=exif)
    assert decode_image(b.getvalue(), "r.jpg").size == (448, 896)


def test_elongated_images_are_refused_with_a_fix():
    with pytest.raises(BadImage, match="more elongated than 20:1; crop it"):
        decode_image(_png((20000, 100)), "strip.png")


def test_batches_are_sized_by_bytes():
    assert rows_per_batch(DECODE_SIDE, 64 << 20) * 2 * DECODE_SIDE ** 2 * 3 <= 64 << 20
    assert rows_per_batch(64, 64 << 20) == 256 and rows_per_batch(10_000, 1) == 1
    assert target_size(7000, 7000, 448) == (448, 448) and target_size(10, 5, 448) == (10, 5)


def test_a_dataset_over_its_pixel_budget_is_refused(tmp_path, monkeypatch):
    from core.data import open_dataset
    from core.data.table import DatasetError

    monkeypatch.setenv("CLIPOOD_CACHE", str(tmp_path / "cache"))
    for c in ("a", "b"):
        for i in range(5):
            (tmp_path / "f" / c).mkdir(parents=True, exist_ok=True)
            (tmp_path / "f" / c / f"{i}.png").write_bytes(_png((1000, 1000)))
    with pytest.raises(DatasetError, match="decodes to more than 5,000,000 pixels"):
        open_dataset(f"folder:{tmp_path / 'f'}", max_dataset_pixels=5_000_000)
    assert len(open_dataset(f"folder:{tmp_path / 'f'}")) == 10


BOMB_RUN = r"""
import resource, sys, numpy as np
import open_clip  # (imported by the pipeline on first use; its ~150 MB are not the data path's)
from core.data import open_dataset
from core.data.cache import eval_images
from core.data.pipeline import ImagePipeline
from core.explore import sample_mosaic
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak()
t = open_dataset("zip:" + sys.argv[1])            # unpack + pre-flight check (every image decoded)
sample_mosaic(t)                                  # the Data view's preview
eval_images(t, np.arange(len(t)), ImagePipeline(224, (0, 0, 0), (1, 1, 1)))  # evaluation loading
print(round(peak() - base))
"""


def bomb_zip(path: Path, n: int = 12, side: int = 6000) -> Path:
    """A few kB: ``n`` identical 1-bit ``side``² PNGs (each under MAX_PIXELS) in two class folders."""
    png = _png((side, side))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            zf.writestr(f"{'ab'[i % 2]}/{i}.png", png)
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB")
def test_a_zip_of_pixel_bombs_stays_within_a_small_memory_budget(tmp_path):
    """Before: every image of a batch decoded at full size (108 MB each as RGB here), >1 GB over the baseline."""
    z = bomb_zip(tmp_path / "bombs.zip")
    assert z.stat().st_size < 100_000
    env = {**os.environ, "CLIPOOD_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", BOMB_RUN, str(z)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) < 250, r.stdout  # MB over the process's baseline (2,242 MB before the fix)
