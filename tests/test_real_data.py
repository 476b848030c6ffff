"""The real-data path on fixtures built here in the real formats: parquet written with `datasets` (loaded through the
same `load_dataset` call as a hub id, offline), DomainBed and class-folder trees, zips (good and hostile), corrupt
images and empty domains, plus short CLIPood runs with the tiny random model on each."""

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import RunConfig
from core.data import open_dataset
from core.data.table import DatasetError

DOMAINS = ("art", "photo", "sketch")
CLASSES = ("cat", "dog", "house_plant")
SUMMARY_KEYS = {"status", "reason", "config", "zeroshot", "final", "result", "tracked", "steps_done", "total_steps",
                "wall_s", "last_checkpoint_step"}


@pytest.fixture(autouse=True)
def offline_and_private_caches(tmp_path, monkeypatch):
    """Hub offline, and every cache (ours, datasets' Arrow cache) inside the test's own folder."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("CLIPOOD_CACHE", str(tmp_path / "cache"))


def _image(seed: int, size=(20, 16)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    arr = np.clip(base + rng.integers(-30, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _save(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _image(seed).save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")


def make_domainbed(root: Path, per: int = 5, domains=DOMAINS, classes=CLASSES) -> Path:
    for d, dom in enumerate(domains):
        for c, cls in enumerate(classes):
            for i in range(per):
                _save(root / dom / cls / f"{i:03d}.{'jpg' if i % 2 else 'png'}", 100 * d + 10 * c + i)
    (root / domains[0] / classes[0] / "notes.txt").write_text("not an image")
    (root / domains[0] / ".DS_Store").write_bytes(b"\0\0junk")
    (root / "__MACOSX" / domains[0]).mkdir(parents=True)
    (root / "__MACOSX" / domains[0] / "._000.png").write_bytes(b"\0AppleDouble")
    return root


def make_class_folder(root: Path, classes=("apple", "banana", "cherry", "date"), per: int = 6) -> Path:
    for c, cls in enumerate(classes):
        for i in range(per):
            _save(root / cls / f"{i}.png", 1000 + 10 * c + i)
    return root


def make_parquet_repo(root: Path, splits: dict[str, int], domains=DOMAINS, int_domains=False,
                      classes=CLASSES, corrupt_rows=(), domain_of=None) -> Path:
    """A hub-style data-file repo (``data/<split>-00000-of-00001.parquet``) written with `datasets`."""
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as HFImage

    feats = Features({"image": HFImage(), "label": ClassLabel(names=list(classes)),
                      "domain": Value("int64") if int_domains else Value("string")})
    for split, n in splits.items():
        imgs = []
        for i in range(n):
            if split == "train" and i in corrupt_rows:
                imgs.append({"bytes": b"this is not a png", "path": None})
            else:
                buf = io.BytesIO()
                _image(hash((split, i)) % 10_000).save(buf, format="PNG")
                imgs.append({"bytes": buf.getvalue(), "path": None})
        labels = [i % len(classes) for i in range(n)]
        doms = [domain_of(i) if domain_of else (i // len(classes)) % len(domains) for i in range(n)]
        ds = Dataset.from_dict({"image": imgs, "label": labels,
                                "domain": doms if int_domains else [domains[d] for d in doms]}, features=feats)
        (root / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def tiny_run(dataset: str, run_dir=None, **kw) -> dict:
    from core.engine import run_to_end

    cfg = dict(model="tiny-random", dataset=dataset, steps=2, batch_size=4, eval_every=0, checkpoint_every=0,
               device="cpu")
    cfg.update(kw)
    return run_to_end(RunConfig(**cfg), run_dir)


def assert_done(summary: dict, evals: set[str]) -> None:
    assert SUMMARY_KEYS <= set(summary), summary.keys()
    assert summary["status"] == "done", summary["reason"]
    assert summary["steps_done"] == summary["total_steps"] == 2
    assert evals <= set(summary["zeroshot"]) and evals <= set(summary["final"])
    for acc in (summary["zeroshot"], summary["final"], summary["result"]):
        assert all(0.0 <= v <= 100.0 for v in acc.values()), acc
        targets = [v for k, v in acc.items() if k.startswith("ood/")]
        if targets:  # the OOD figure pools the target domains, so it lies within their range
            assert min(targets) - 1e-6 <= acc["ood"] <= max(targets) + 1e-6, acc
        if "hm" in acc:  # the harmonic mean is derived from base and new, not measured separately
            b, n = acc["base"], acc["new"]
            assert acc["hm"] == pytest.approx(2 * b * n / (b + n) if b + n else 0.0, abs=0.05), acc


# ---------------------------------------------------------------- folders


def test_domainbed_folder_layout_sorted_split_fixed_and_run(tmp_path):
    root = make_domainbed(tmp_path / "pacs-like")
    t = open_dataset(f"folder:{root}", seed=0)
    assert t.domains == list(DOMAINS) and t.classes == list(CLASSES)
    assert t.info["layout"] == "domains"
    assert len(t) == 3 * 3 * 5  # notes.txt, .DS_Store and __MACOSX ignored
    assert all(n == 5 for per in t.counts().values() for n in per.values())
    for d in range(3):  # 80/20 per domain, and the hold-out does not move with the run seed
        assert t.is_test[t.domain_ids == d].sum() == 3
    t2 = open_dataset(f"folder:{root}", seed=7)
    assert np.array_equal(t.is_test, t2.is_test)
    imgs = t.load(np.array([0, len(t) - 1]))
    assert all(im.mode == "RGB" and im.size == (20, 16) for im in imgs)

    s = tiny_run(f"folder:{root}", run_dir=tmp_path / "run", sources=["art", "photo"], targets=["sketch"])
    assert_done(s, {"id", "ood", "ood/sketch"})
    assert (tmp_path / "run" / "summary.json").is_file()


def test_class_folder_layout_open_class_run(tmp_path):
    root = make_class_folder(tmp_path / "fruit")
    t = open_dataset(f"folder:{root}")
    assert t.info["layout"] == "classes" and t.domains == ["fruit"]
    assert t.classes == ["apple", "banana", "cherry", "date"]
    s = tiny_run(f"folder:{root}", setting="open_class")
    assert_done(s, {"base", "new", "hm"})


def test_shots_sample_train_pool_only_by_run_seed(tmp_path):
    root = make_domainbed(tmp_path / "d", per=10)
    full = open_dataset(f"folder:{root}", seed=0)
    a = open_dataset(f"folder:{root}", seed=0, shots=3)
    b = open_dataset(f"folder:{root}", seed=1, shots=3)
    for t in (a, b):
        train = ~t.is_test
        for d in range(3):
            for c in range(3):
                assert ((t.labels == c) & (t.domain_ids == d) & train).sum() == 3
        assert t.is_test.sum() == full.is_test.sum()  # the test pool is untouched
    pixels = lambda t, m: [im.tobytes() for im in t.load(np.flatnonzero(m))]  # noqa: E731
    assert pixels(a, a.is_test) == pixels(b, b.is_test) == pixels(full, full.is_test)
    assert pixels(a, ~a.is_test) != pixels(b, ~b.is_test)
    capped = open_dataset(f"folder:{root}", seed=3, max_per_class_domain=4)  # caps the whole table, seed-free
    assert all(n == 4 for per in capped.counts().values() for n in per.values())
    assert np.array_equal(capped.is_test, open_dataset(f"folder:{root}", max_per_class_domain=4).is_test)


def test_empty_domain_and_single_class_and_mixed_layout_are_clear_errors(tmp_path):
    root = make_domainbed(tmp_path / "d", per=3)
    (root / "cartoon").mkdir()
    with pytest.raises(DatasetError, match="domain 'cartoon'.*no images"):
        open_dataset(f"folder:{root}")
    one = make_class_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DatasetError, match="at least two"):
        open_dataset(f"folder:{one}")
    mixed = make_class_folder(tmp_path / "mixed", classes=("a", "b"))
    _save(mixed / "c" / "sub" / "x.png", 1)
    with pytest.raises(DatasetError, match="mixes layouts"):
        open_dataset(f"folder:{mixed}")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"folder:{tmp_path / 'nope'}")


def test_corrupt_images_are_all_listed_and_no_run_starts(tmp_path):
    root = make_domainbed(tmp_path / "d", per=4)
    (root / "art" / "dog" / "001.jpg").write_bytes(b"<html>not a jpeg</html>")
    good = (root / "sketch" / "cat" / "000.png").read_bytes()
    (root / "sketch" / "cat" / "000.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    jpg = io.BytesIO()
    _image(3, size=(300, 200)).save(jpg, format="JPEG")
    (root / "photo" / "house_plant" / "003.jpg").write_bytes(jpg.getvalue()[:-200])  # truncated JPEG
    with pytest.raises(DatasetError) as e:
        open_dataset(f"folder:{root}")
    msg = str(e.value)
    assert "3 image(s) cannot be read" in msg
    assert all(f in msg for f in ("art/dog/001.jpg", "sketch/cat/000.png", "photo/house_plant/003.jpg"))
    s = tiny_run(f"folder:{root}")
    assert s["status"] == "failed" and "art/dog/001.jpg" in s["reason"] and s["steps_done"] == 0


def test_validation_is_cached_but_not_stale(tmp_path):
    root = make_domainbed(tmp_path / "d", per=3)
    open_dataset(f"folder:{root}")
    assert list((tmp_path / "cache" / "validated").iterdir())
    (root / "photo" / "dog" / "002.png").write_bytes(b"broken now")  # size changes -> new fingerprint
    with pytest.raises(DatasetError, match="photo/dog/002.png"):
        open_dataset(f"folder:{root}")


def test_symlinks_inside_a_folder_are_not_followed(tmp_path):
    root = make_class_folder(tmp_path / "f", classes=("a", "b"))
    outside = tmp_path / "outside"
    _save(outside / "secret.png", 5)
    os.symlink(outside, root / "linked_class")
    os.symlink(outside / "secret.png", root / "a" / "link.png")
    t = open_dataset(f"folder:{root}")
    assert t.classes == ["a", "b"] and len(t) == 12


def test_decompression_bomb_and_foreign_formats_refused(tmp_path):
    from core.data.images import BadImage, decode_image

    big = tmp_path / "big.png"
    Image.new("1", (8000, 8000)).save(big)  # 64 Mpx, a few kB on disk
    with pytest.raises(BadImage, match="pixels"):
        decode_image(str(big), "big.png")
    eps = io.BytesIO()
    Image.new("RGB", (8, 8)).save(eps, format="PPM")
    with pytest.raises(BadImage, match="allowed format"):
        decode_image(eps.getvalue(), "x.png")
    rgba = io.BytesIO()
    Image.new("P", (5, 7)).save(rgba, format="GIF")
    assert decode_image(rgba.getvalue(), "x.gif").mode == "RGB"


# ---------------------------------------------------------------- hub datasets (local parquet, offline)


def test_parquet_preset_same_code_path_as_hub_and_run(tmp_path):
    repo = make_parquet_repo(tmp_path / "pacs", {"train": 45})
    t = open_dataset("pacs", seed=0, path=str(repo))
    assert t.name == "pacs"
    assert t.classes == ["cat", "dog", "house plant"]  # ClassLabel names cleaned for prompts
    assert t.domains == list(DOMAINS) and len(t) == 45
    assert t.info["columns"] == {"image": "image", "label": "label", "domain": "domain"}
    assert t.is_test.sum() == 9  # 20% of 15 per domain
    assert np.array_equal(t.labels, np.arange(45) % 3)
    h = open_dataset(f"hf:{repo}", seed=0)  # the generic scheme reads the same files the same way
    assert h.classes == t.classes and np.array_equal(h.labels, t.labels) and np.array_equal(h.is_test, t.is_test)
    s = tiny_run("pacs", data_options={"path": str(repo)}, sources=["art", "photo"], targets=["sketch"])
    assert_done(s, {"id", "ood", "ood/sketch"})


def test_column_mapping_options(tmp_path):
    from datasets import Dataset, Features, Value
    from datasets import Image as HFImage

    rows = []
    for i in range(24):
        buf = io.BytesIO()
        _image(i).save(buf, format="PNG")
        rows.append({"pic": {"bytes": buf.getvalue(), "path": None}, "kind": ["red_fox", "grey_wolf"][i % 2],
                     "site": ["north", "south"][i // 12]})
    feats = Features({"pic": HFImage(), "kind": Value("string"), "site": Value("string")})
    path = tmp_path / "custom.parquet"
    Dataset.from_list(rows, features=feats).to_parquet(str(path))
    with pytest.raises(DatasetError, match="label_column"):
        open_dataset(f"hf:{path}")
    t = open_dataset(f"hf:{path}", label_column="kind", domain_column="site")
    assert t.classes == ["grey wolf", "red fox"] and t.domains == ["north", "south"]
    with pytest.raises(DatasetError, match="no column 'nope'"):
        open_dataset(f"hf:{path}", label_column="nope")


def test_open_class_preset_uses_hub_test_split_shots_and_coop_template(tmp_path):
    classes = ("annual_crop", "forest", "highway", "river")
    repo = make_parquet_repo(tmp_path / "eurosat", {"train": 40, "test": 12}, domains=("all",), classes=classes)
    t = open_dataset("eurosat", seed=0, path=str(repo))
    assert t.templates == ("a centered satellite photo of {}.",)
    assert t.is_test.sum() == 12  # exactly the hub's test split
    assert (~t.is_test).sum() == 4 * 10  # default 16 shots > 10 available per class
    t2 = open_dataset("eurosat", seed=0, path=str(repo), shots=2)
    assert (~t2.is_test).sum() == 8 and t2.is_test.sum() == 12
    s = tiny_run("eurosat", setting="open_class", data_options={"path": str(repo), "shots": 2})
    assert_done(s, {"base", "new", "hm"})
    assert s["config"]["data_options"]["shots"] == 2


def _counted_parquet(path: Path, counts: dict[str, int]) -> Path:
    """One parquet file whose class k (ClassLabel names in the given order) has ``counts[k]`` rows."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as HFImage

    names = list(counts)
    rows = []
    for k, n in enumerate(counts.values()):
        for i in range(n):
            buf = io.BytesIO()
            _image(100 * k + i).save(buf, format="PNG")
            rows.append({"image": {"bytes": buf.getvalue(), "path": None}, "label": k})
    feats = Features({"image": HFImage(), "label": ClassLabel(names=names)})
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=feats).to_parquet(str(path))
    return path


def test_caltech_preset_is_a_parquet_copy_with_coops_names_order_and_drops(tmp_path):
    from core.data.classnames import CALTECH
    from core.data.real import OPEN_CLASS

    assert OPEN_CLASS["caltech101"][0] == "flwrlabs/caltech101"  # data files, no loading script
    counts = {"BACKGROUND_Google": 2, "Faces": 3, "Faces_easy": 2, "Leopards": 4, "accordion": 5, "airplanes": 6}
    f = _counted_parquet(tmp_path / "c101" / "train.parquet", counts)
    t = open_dataset("caltech101", data_files=str(f), shots=0)
    # CoOp numbers the folders in Python's sort order (upper case first) and renames four of them
    assert t.classes == [CALTECH["Faces"], CALTECH["Leopards"], "accordion", CALTECH["airplanes"]]
    n = {c: int((t.labels == i).sum()) for i, c in enumerate(t.classes)}
    assert n == {"face": 3, "leopard": 4, "accordion": 5, "airplane": 6}  # every row kept its own class
    assert t.info["test_split"] is None and 0 < t.is_test.sum() < len(t)  # one train split: 80/20 hold-out
    assert "caltech101.py:10-16" in t.info["class_names"]


def test_flowers_preset_names_folder_numbers_in_coop_order(tmp_path):
    from core.data.classnames import FLOWERS
    from core.data.splits import make_splits

    counts = {"1": 2, "10": 3, "100": 4, "2": 5}  # the hub's label names: folder numbers in string order
    f = _counted_parquet(tmp_path / "fl" / "train.parquet", counts)
    t = open_dataset("flowers102", data_files={"train": str(f), "test": str(f)}, shots=0)  # same rows in both
    assert t.classes == [FLOWERS[0], FLOWERS[1], FLOWERS[9], FLOWERS[99]]
    assert [int((t.labels[~t.is_test] == i).sum()) for i in range(4)] == [2, 5, 3, 4]
    assert make_splits(t, "open_class").base == [0, 1]  # CoOp's base half: categories 1 and 2


def test_loading_script_dataset_gets_one_clear_line(tmp_path):
    d = tmp_path / "old_style"
    d.mkdir()
    (d / "old_style.py").write_text("import datasets\n")
    with pytest.raises(DatasetError) as e:
        open_dataset(f"hf:{d}")
    msg = str(e.value)
    assert "loading-script dataset" in msg and "--data data_files=" in msg and "\n" not in msg


def test_streaming_preset_caps_per_class_domain_and_stops_early(tmp_path):
    # Rows 0-11 fill every (class, domain) pair twice; rows from 40 on carry a domain id (2) that has no name, so
    # reading that far fails: the capped stream must stop once every pair is full.
    repo = make_parquet_repo(tmp_path / "dn", {"train": 60, "test": 60}, int_domains=True, classes=("a", "b", "c"),
                             domain_of=lambda i: 2 if i >= 40 else (i // 3) % 2)
    t = open_dataset("domainnet", seed=0, path=str(repo), max_per_class_domain=2, domain_names="clipart,real")
    assert t.info["streaming"] is True and t.domains == ["clipart", "real"] and t.info["test_split"] == "test"
    assert len(t) == 24 and t.is_test.sum() == 12  # both hub splits, each capped
    assert all(n == 4 for per in t.counts().values() for n in per.values())
    with pytest.raises(DatasetError, match="domain ids go up to 2.*domain_names"):
        open_dataset("domainnet", seed=0, path=str(repo), max_per_class_domain=100, domain_names="clipart,real")


def test_the_public_servers_hub_options_stream_and_train(tmp_path):
    """What the app adds for hub datasets on a public server (streaming, a per-(class, domain) cap and a row cap)
    works on the generic hf: scheme, and on a preset that is not streamed by default."""
    from app.configure import DataChoice, data_options
    from app.options import AppOptions, Caps

    repo = make_parquet_repo(tmp_path / "pacs", {"train": 45})
    opts = data_options(DataChoice(dataset="hf:", path="x/y", shots=2),
                        AppOptions(allow_local_paths=False, warmup=False, caps=Caps(max_hub_per_class_domain=3)))
    assert opts["streaming"] is True and opts["max_per_class_domain"] == 3
    assert opts.pop("hub_only") is True  # a public server never reads its own disk: the fixture is local, so
    with pytest.raises(DatasetError, match="cannot load dataset"):  # it is refused there, and read here without
        open_dataset(f"hf:{repo}", seed=0, hub_only=True, **opts)
    t = open_dataset(f"hf:{repo}", seed=0, **opts)
    assert t.info["streaming"] is True and len(t) < 45
    assert max(n for per in t.counts().values() for n in per.values()) <= 3  # the cap per (class, domain)
    s = tiny_run("pacs", data_options={"path": str(repo), **opts}, sources=["art", "photo"], targets=["sketch"])
    assert_done(s, {"id", "ood", "ood/sketch"})


def test_corrupt_hub_row_is_named(tmp_path):
    repo = make_parquet_repo(tmp_path / "bad", {"train": 30}, corrupt_rows=(4, 17))
    with pytest.raises(DatasetError) as e:
        open_dataset("office-home", path=str(repo))
    assert "train row 4" in str(e.value) and "train row 17" in str(e.value)


def test_offline_hub_id_gives_fetch_instructions():
    with pytest.raises(DatasetError) as e:
        open_dataset("pacs")
    msg = str(e.value)
    assert "flwrlabs/pacs" in msg and "hf download flwrlabs/pacs --repo-type dataset" in msg
    assert "--data path=" in msg and "\n" not in msg
    with pytest.raises(DatasetError, match="root=./data/VLCS"):
        open_dataset("vlcs")


def test_vlcs_preset_reads_domainbed_folder(tmp_path):
    root = make_domainbed(tmp_path / "VLCS", per=3, domains=("VOC2007", "Caltech101", "SUN09", "LabelMe"))
    t = open_dataset("vlcs", root=str(root))
    assert t.name == "vlcs" and t.domains == ["Caltech101", "LabelMe", "SUN09", "VOC2007"]


def test_bad_options_name_the_option(tmp_path):
    root = make_class_folder(tmp_path / "f")
    for opts, field in (({"shots": -1}, "shots"), ({"shots": "many"}, "shots"), ({"test_fraction": 2}, "test_fraction"),
                        ({"templates": "no placeholder"}, "templates")):
        with pytest.raises(DatasetError, match=f"--data {field}"):
            open_dataset(f"folder:{root}", **opts)
    with pytest.raises(DatasetError, match="drop --data path"):
        open_dataset(f"folder:{root}", path=str(root))


# ---------------------------------------------------------------- zips


def _zip_tree(src: Path, zpath: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + str(p.relative_to(src)))
    return zpath


def test_zip_unpacks_once_into_sha_keyed_cache_and_runs(tmp_path, monkeypatch):
    from core.data import archive

    src = make_domainbed(tmp_path / "tree", per=3)
    z = _zip_tree(src, tmp_path / "upload.zip", prefix="my_data/")  # a wrapper folder, as zips usually have
    t = open_dataset(f"zip:{z}")
    assert t.domains == list(DOMAINS) and t.classes == list(CLASSES) and len(t) == 27
    unpacked = Path(t.info["unpacked_to"])
    assert (tmp_path / "cache" / "zips") in unpacked.parents and unpacked.name == "my_data"
    assert t.info["skipped_entries"] == 3  # notes.txt, .DS_Store, __MACOSX/...
    assert not list(unpacked.rglob("*.txt")) and not (unpacked / "__MACOSX").exists()
    unpacks = []
    real_unpack = archive._unpack
    monkeypatch.setattr(archive, "_unpack", lambda *a: unpacks.append(a) or real_unpack(*a))
    assert len(open_dataset(f"zip:{z}")) == 27 and not unpacks  # same content hash: reused, not unpacked again
    z2 = _zip_tree(src, tmp_path / "renamed.zip", prefix="other/")
    open_dataset(f"zip:{z2}")
    assert len(unpacks) == 1  # other content, other folder
    s = tiny_run(f"zip:{z}")
    assert_done(s, {"id", "ood"})


def _evil_zip(path: Path, kind: str, compression=zipfile.ZIP_DEFLATED) -> Path:
    png = io.BytesIO()
    _image(1).save(png, format="PNG")
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("ok/a/1.png", png.getvalue())
        zf.writestr("ok/b/1.png", png.getvalue())
        if kind == "dotdot":
            zf.writestr("../../escape.png", png.getvalue())
        elif kind == "inner-dotdot":
            zf.writestr("ok/a/../../../escape.png", png.getvalue())
        elif kind == "absolute":
            zf.writestr("/tmp/escape.png", png.getvalue())
        elif kind == "drive":
            zf.writestr("C:\\escape.png", png.getvalue())
        elif kind == "symlink":
            info = zipfile.ZipInfo("ok/a/link.png")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        elif kind == "many":
            for i in range(30):
                zf.writestr(f"ok/a/m{i}.png", png.getvalue())
        elif kind == "bomb":
            zf.writestr("ok/a/zeros.png", b"\0" * (3 << 20))
    return path


@pytest.mark.parametrize("kind,why", [("dotdot", "'..'"), ("inner-dotdot", "'..'"), ("absolute", "absolute"),
                                      ("drive", "absolute"), ("symlink", "symbolic link"), ("many", "entries"),
                                      ("bomb", "expands to")])
def test_hostile_zips_are_refused_and_write_nothing(tmp_path, kind, why):
    up = tmp_path / "up"
    up.mkdir()
    z = _evil_zip(up / "evil.zip", kind)
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(DatasetError, match=why):
        open_dataset(f"zip:{z}", max_files=20, max_bytes=1 << 20)
    after = {p for p in tmp_path.rglob("*")}
    new = [p for p in after - before if p.is_file()]
    assert not new, new  # nothing unpacked anywhere, not even inside the cache
    assert not list(tmp_path.rglob("escape.png"))


def test_damaged_zip_is_a_clear_error(tmp_path):
    z = _evil_zip(tmp_path / "ok.zip", "none", zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    i = data.find(b"IDAT")
    data[i + 10: i + 30] = b"\xff" * 20  # corrupt compressed bytes -> CRC or inflate error
    z.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="damaged"):
        open_dataset(f"zip:{z}")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # the partial unpack was removed
    (tmp_path / "plain.zip").write_text("not a zip")
    with pytest.raises(DatasetError, match="not a zip"):
        open_dataset(f"zip:{tmp_path / 'plain.zip'}")


# ---------------------------------------------------------------- eval-tensor cache and CLI


def test_eval_tensor_cache_hits_and_keys(tmp_path):
    from core.data.cache import eval_images
    from core.data.pipeline import ImagePipeline

    root = make_class_folder(tmp_path / "f", classes=("a", "b"))
    t = open_dataset(f"folder:{root}")
    calls = []
    real_load = t.load
    t.load = lambda idx: calls.append(len(idx)) or real_load(idx)
    pipe = ImagePipeline(24, (0.5,) * 3, (0.5,) * 3)
    idx = np.flatnonzero(t.is_test)
    x1 = eval_images(t, idx, pipe)
    assert calls and x1.shape == (len(idx), 3, 24, 24)
    calls.clear()
    x2 = eval_images(t, idx, pipe)
    assert not calls and (x1 == x2).all()  # second run: straight from disk
    eval_images(t, idx, ImagePipeline(32, (0.5,) * 3, (0.5,) * 3))
    assert calls  # another input size is another entry
    calls.clear()
    eval_images(t, idx[:-1], pipe)
    assert calls  # another split is another entry
    assert len(list((tmp_path / "cache" / "eval").glob("*.safetensors"))) == 3


def test_cli_train_on_folder_and_one_line_error(tmp_path, capsys):
    from core.cli import main

    root = make_class_folder(tmp_path / "f", classes=("a", "b"))
    rc = main(["train", "--model", "tiny-random", "--dataset", f"folder:{root}", "--setting", "open_class",
               "--steps", "2", "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path / "runs"), "--quiet",
               "--data", "shots=3"])
    assert rc == 0
    assert "status: done" in capsys.readouterr().out
    rc = main(["eval", "--model", "tiny-random", "--dataset", f"folder:{tmp_path / 'missing'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and err.count("\n") == 1
