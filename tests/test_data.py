"""nni_eas.data: real datasets from the local copies, splits, the decoded-array cache, tasks, DataModule."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nni_eas.data as data
from nni_eas.config import ConfigError
from nni_eas.data import (
    ArrayDataset,
    DatasetCacheWarning,
    DatasetNotFoundError,
    Task,
    TaskDataset,
    TaskSampler,
    labeled_unlabeled_split,
    load_dataset,
    stratified_split,
)
from nni_eas.data import datasets as ds_mod

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NNI_EAS_SHARED", ROOT.parent / "shared")) / "data"
FASHION = Path("/usr/share/datasets/fashion-mnist")
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _need(*names: str) -> Path:
    missing = [n for n in names if not (DATA / n).exists()]
    if missing:
        pytest.skip(f"local dataset copies {missing} not found under {DATA} (set NNI_EAS_SHARED)")
    return DATA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads or writes the user's cache or data home."""
    monkeypatch.delenv("NNI_EAS_DATA", raising=False)
    monkeypatch.setenv("NNI_EAS_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the session, so each slow source (CIFAR JPEGs) is decoded once per run."""
    return tmp_path_factory.mktemp("nni-eas-cache")


def _disjoint(*parts: np.ndarray) -> bool:
    allidx = np.concatenate(parts)
    return len(np.unique(allidx)) == len(allidx)


# ---------------------------------------------------------------------------------------------
# datasets from the local copies


def test_digits_splits_shapes_and_normalisation():
    splits = {s: load_dataset("digits", s) for s in ("train", "val", "test", "trainval")}
    train, val, test = splits["train"], splits["val"], splits["test"]
    assert len(train) + len(val) + len(test) == 1797
    assert _disjoint(train.indices, val.indices, test.indices)
    assert sorted(np.concatenate([train.indices, val.indices]).tolist()) == sorted(splits["trainval"].indices.tolist())
    for d in splits.values():
        assert d.classes == [str(i) for i in range(10)] and d.num_classes == 10
        assert d.images.dtype == torch.uint8 and tuple(d.images.shape[1:]) == (8, 8, 1)
        assert int(d.images.max()) == 255 and int(d.images.min()) == 0
        assert d.class_counts().min() > 0  # stratified: every class in every split
    from sklearn.datasets import load_digits

    ref = load_digits()
    for d in (train, test):  # each image keeps its own label, values 0..16 scaled to 0..255
        assert np.array_equal(d.labels.numpy(), ref.target[d.indices])
        assert np.array_equal(d.images[..., 0].numpy(), np.rint(ref.images[d.indices] * 255 / 16))
    x, y = train[0]
    assert x.dtype == torch.float32 and x.shape == (1, 32, 32) and isinstance(y, int)  # default upsampled to 32
    # test share 20 % of each class (rounded), val 10 % of the rest
    counts = torch.bincount(torch.as_tensor(np.concatenate([train.labels, val.labels, test.labels])))
    assert torch.equal(test.class_counts(), torch.floor(counts * 0.2 + 0.5).long())
    # normalised with the stored statistics: at native size the train pool is ~zero-mean, unit-std
    X, Y = splits["trainval"].with_options(resolution=8).tensors()
    assert abs(float(X.mean())) < 0.02 and abs(float(X.std()) - 1) < 0.02
    assert torch.equal(Y, splits["trainval"].labels)


def test_splits_are_deterministic():
    a, b = load_dataset("digits", "val"), load_dataset("digits", "val")
    assert np.array_equal(a.indices, b.indices) and torch.equal(a.images, b.images)
    assert len(set(a.labels[:30].tolist())) >= 8  # not grouped by class
    assert len(load_dataset("digits", "val", val_fraction=0.0)) == 0
    assert len(load_dataset("digits", "train", val_fraction=0.0)) == len(load_dataset("digits", "trainval"))


def test_cifar10_test_split_and_cache(shared_cache):
    root = _need("cifar10-jpg.tar.gz")
    test = load_dataset("cifar10", "test", root=root, cache_dir=shared_cache)
    assert len(test) == 10000 and test.classes == CIFAR_CLASSES
    assert test.class_counts().tolist() == [1000] * 10
    assert test.images.dtype == torch.uint8 and tuple(test.images.shape) == (10000, 32, 32, 3)
    assert not any(shared_cache.glob("cifar10-train-*"))  # the test split decodes only test images
    (cache_file,) = shared_cache.glob("cifar10-test-*.npz")
    pool = ds_mod._read_cache(cache_file)  # images and labels stay paired through the split's order
    assert np.array_equal(test.images.numpy(), pool.images[test.indices])
    assert np.array_equal(test.labels.numpy(), pool.labels[test.indices])
    again = load_dataset("cifar10", "test", root=root, cache_dir=shared_cache)
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    x, y = test[123]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= y < 10
    X, Y = test.tensors()
    assert X.shape == (10000, 3, 32, 32) and Y.dtype == torch.int64
    assert (X.mean(dim=(0, 2, 3)).abs() < 0.05).all()  # CIFAR mean/std normalisation


def test_cifar10_train_val_disjoint(shared_cache):
    root = _need("cifar10-jpg.tar.gz")
    train = load_dataset("cifar10", "train", root=root, cache_dir=shared_cache)
    val = load_dataset("cifar10", "val", root=root, cache_dir=shared_cache)
    assert len(train) == 45000 and len(val) == 5000
    assert val.class_counts().tolist() == [500] * 10
    assert _disjoint(train.indices, val.indices)
    assert train.source == val.source != load_dataset("cifar10", "test", root=root, cache_dir=shared_cache).source
    # stored grouped by class, served in a fixed random order: any prefix is a fair sample
    assert train.labels[:1000].bincount(minlength=10).min() > 50


def test_fashion_mnist():
    if not (FASHION / "t10k-images-idx3-ubyte.gz").exists() and not (FASHION / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"Fashion-MNIST idx files not in {FASHION} (sudo apt-get install dataset-fashion-mnist)")
    test = load_dataset("fashion_mnist", "test", root=FASHION.parent)
    trainval = load_dataset("fashion_mnist", "trainval", root=FASHION.parent)
    assert len(test) == 10000 and len(trainval) == 60000
    assert test.class_counts().tolist() == [1000] * 10 and trainval.class_counts().tolist() == [6000] * 10
    assert tuple(test.images.shape[1:]) == (28, 28, 1) and test.classes[0] == "T-shirt/top"
    x, _ = test[0]
    assert x.shape == (1, 28, 28)
    # found without root too, in the Debian package's folder
    assert len(load_dataset("fashion_mnist", "test")) == 10000


def test_omniglot_merged_and_split(tmp_path):
    root = _need("omniglot/images_background_small1.zip", "omniglot/images_background_small2.zip")
    parts = {s: load_dataset("omniglot", s, root=root, cache_dir=tmp_path) for s in ("train", "val", "test")}
    classes = parts["train"].classes
    assert len(classes) == 242 and len(set(classes)) == 242
    assert "Greek/character01" in classes and "Latin/character01" in classes  # in both zips, merged once
    assert all(p.classes == classes for p in parts.values())
    assert parts["test"].class_counts().tolist() == [5] * 242
    pool = parts["train"].class_counts() + parts["val"].class_counts()
    assert pool.tolist() == [15] * 242
    assert sum(len(p) for p in parts.values()) == 242 * 20
    assert _disjoint(*(p.indices for p in parts.values()))
    assert tuple(parts["test"].images.shape[1:]) == (32, 32, 1)  # decode_size default


def test_flowers17_split_and_decode_size(shared_cache):
    root = _need("flowers17.tar.gz")
    trainval = load_dataset("flowers17", "trainval", root=root, cache_dir=shared_cache)
    test = load_dataset("flowers17", "test", root=root, cache_dir=shared_cache)
    assert trainval.num_classes == test.num_classes == 17 and trainval.classes[0] == "Daffodil"
    assert (trainval.class_counts() + test.class_counts()).tolist() == [80] * 17
    assert trainval.class_counts().tolist() == [60] * 17
    assert _disjoint(trainval.indices, test.indices)
    assert tuple(test.images.shape[1:]) == (96, 96, 3)
    x, _ = test.with_options(resolution=64)[0]
    assert x.shape == (3, 64, 64)
    small = load_dataset("flowers17", "test", root=root, cache_dir=shared_cache, decode_size=32)
    assert tuple(small.images.shape[1:]) == (32, 32, 3) and torch.equal(small.labels, test.labels)
    assert len(list(shared_cache.glob("flowers17-all-*.npz"))) == 2  # the decode size is part of the key


def test_default_search_finds_the_shared_copy(tmp_path):
    _need("omniglot/images_background_small1.zip")
    d = load_dataset("omniglot", "test", cache_dir=tmp_path)  # no root: ../shared/data of the checkout
    assert d.num_classes == 242 and str(DATA.resolve()) in str(Path(d.source.split("@", 1)[1]).resolve())


# ---------------------------------------------------------------------------------------------
# conversion


def test_channels_and_resolution_conversion():
    gray = load_dataset("digits", "test", resolution=8)
    rgb = gray.with_options(channels=3)
    x1, _ = gray[0]
    x3, _ = rgb[0]
    assert x3.shape == (3, 8, 8) and torch.allclose(x3[0], x3[2]) and torch.allclose(x3[0], x1[0])
    images = torch.randint(0, 256, (4, 6, 6, 3), dtype=torch.uint8)
    color = ArrayDataset(images, [0, 1, 0, 1], ["a", "b"], mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channels=1)
    expected = (images.float() / 255 @ torch.tensor([0.299, 0.587, 0.114]) - 0.5) / 0.25
    assert torch.allclose(color.tensors()[0][:, 0], expected, atol=1e-5)
    down = color.with_options(channels=3, resolution=3)
    assert torch.equal(down.tensors()[0], down.tensors()[0])  # deterministic
    assert torch.allclose(down[2][0], down.tensors()[0][2])  # item == batch path


# ---------------------------------------------------------------------------------------------
# cache


def test_cache_round_trip_and_corrupt_rebuild(tmp_path, monkeypatch):
    root = _need("omniglot/images_background_small1.zip", "omniglot/images_background_small2.zip")
    first = load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    files = list(tmp_path.glob("omniglot-all-32px-*.npz"))
    assert len(files) == 1
    # the second load reads the cache: the decoder is not called again
    monkeypatch.setitem(ds_mod._READERS, "class_tree", lambda *a: pytest.fail("decoded again despite the cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.classes == second.classes
    monkeypatch.undo()
    # a truncated file (a kill in an old, non-atomic writer; a full disk) is detected and rebuilt
    files[0].write_bytes(files[0].read_bytes()[:5000])
    with pytest.warns(DatasetCacheWarning, match="unreadable.*rebuilding"):
        third = load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    assert torch.equal(first.images, third.images)
    assert len(ds_mod._read_cache(files[0]).labels) == 4840  # rewritten whole


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    root = _need("omniglot/images_background_small1.zip", "omniglot/images_background_small2.zip")

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(ds_mod.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no cache file, no temporary left behind
    monkeypatch.undo()
    load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].endswith(".npz") and not names[0].startswith(".")


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    root = _need("omniglot/images_background_small1.zip", "omniglot/images_background_small2.zip")

    def full_disk(f, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ds_mod.np, "savez", full_disk)
    with pytest.warns(DatasetCacheWarning, match="could not write"):
        d = load_dataset("omniglot", "test", root=root, cache_dir=tmp_path)
    assert len(d) == 1210 and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# errors


def test_missing_data_lists_searched_paths(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("NNI_EAS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", "test", root=empty, cache_dir=tmp_path / "cache")
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    for rel in ("cifar10-jpg.tar.gz", "cifar10-jpg", "cifar-10-batches-py"):
        assert str(empty / rel) in msg
    assert empty / "cifar10-jpg.tar.gz" in err.searched
    assert "download=True" in msg and "NNI_EAS_DATA" in msg
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", root=empty)


def test_missing_data_default_search(tmp_path, monkeypatch):
    """Without root: $NNI_EAS_DATA, ../shared/data of the cwd and the checkout, the download home."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NNI_EAS_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr(ds_mod, "_repo_root", lambda: None)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("flowers17", "test", cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert str(tmp_path / "nowhere" / "flowers17.tar.gz") in msg
    assert str(tmp_path / "shared" / "data" / "flowers17.tar.gz") in msg
    assert "17flowers.tgz" in msg  # how to get it


def test_bad_arguments_name_the_allowed_values():
    with pytest.raises(ConfigError, match=r"unknown dataset .cifar100'.*digits.*cifar10.*fashion_mnist.*omniglot.*flowers17"):
        load_dataset("cifar100")
    with pytest.raises(ValueError, match=r"split.*'validation'.*train, val, test, trainval"):
        load_dataset("digits", "validation")
    with pytest.raises(ValueError, match=r"channels.*allowed: None, 1, 3"):
        load_dataset("digits", channels=2)
    with pytest.raises(ValueError, match=r"decode_size.*omniglot, flowers17"):
        load_dataset("digits", decode_size=16)
    assert load_dataset(" Digits ", "test").name == "digits"  # names: case-insensitive, "-" == "_"
    with pytest.raises(ValueError, match=r"val_fraction.*\[0, 1\)"):
        load_dataset("digits", val_fraction=1.5)


# ---------------------------------------------------------------------------------------------
# torchvision layouts (what download=True leaves), with small synthetic files in the real formats


def _jpeg(value: int, size: int = 12) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size + 4, size), (value, 255 - value, value // 2)).save(buf, format="JPEG")
    return buf.getvalue()


def _write_cifar_batches(folder: Path, n: int = 20) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": name, "labels": [i % 10 for i in range(n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))


def test_torchvision_cifar_download_layout(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            _write_cifar_batches(Path(root) / "cifar-10-batches-py")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("cifar10", "test", root=tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path, download=True)
    assert calls == [(str(tmp_path), True, True)]
    assert len(test) == 20 and tuple(test.images.shape[1:]) == (32, 32, 3) and test.classes == CIFAR_CLASSES
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())["data"]
    k = int(test.indices[3])
    assert np.array_equal(test.images[3].permute(2, 0, 1).reshape(-1).numpy(), raw[k])  # CHW rows -> HWC
    assert int(test.labels[3]) == k % 10
    assert len(load_dataset("cifar10", "trainval", root=tmp_path)) == 100  # found again, no download


def test_torchvision_fashion_mnist_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in imgs.shape) + imgs.tobytes())
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes())
    test = load_dataset("fashion_mnist", "test", root=tmp_path)
    assert len(test) == 10 and sorted(test.labels.tolist()) == list(range(10))
    assert len(load_dataset("fashion_mnist", "trainval", root=tmp_path)) == 30


def test_torchvision_omniglot_layout(tmp_path):
    from PIL import Image

    base = tmp_path / "omniglot-py" / "images_background"
    for a in ("Alpha", "Beta"):
        for c in ("character01", "character02"):
            (base / a / c).mkdir(parents=True)
            for k in range(20):
                Image.new("1", (105, 105), k % 2).save(base / a / c / f"{k:04d}_{k:02d}.png")
    d = load_dataset("omniglot", "test", root=tmp_path, cache_dir=tmp_path / "cache")
    assert d.classes == ["Alpha/character01", "Alpha/character02", "Beta/character01", "Beta/character02"]
    assert d.class_counts().tolist() == [5] * 4 and tuple(d.images.shape[1:]) == (32, 32, 1)


def test_flowers17_archive_download(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    urls = []

    def fake_download(url, download_root, md5=None, **kw):
        urls.append(url)
        jpg = Path(download_root) / "jpg"
        jpg.mkdir(parents=True)
        for i in range(1, 1361):
            (jpg / f"image_{i:04d}.jpg").write_bytes(_jpeg((i - 1) // 80 * 15))
        (jpg / "files.txt").write_text("not an image\n")

    monkeypatch.setattr(tvu, "download_and_extract_archive", fake_download)
    d = load_dataset("flowers17", "test", root=tmp_path, download=True, cache_dir=tmp_path / "cache", decode_size=16)
    assert urls == [ds_mod.dataset_spec("flowers17").download.url] and urls[0].endswith("17flowers.tgz")
    assert d.class_counts().tolist() == [20] * 17 and tuple(d.images.shape[1:]) == (16, 16, 3)


# ---------------------------------------------------------------------------------------------
# tasks


def test_task_remap_restrict_and_mask():
    t = Task((7, 2, 5, 2), name="pets")
    assert t.classes == (2, 5, 7) and len(t) == 3 and 5 in t and list(t) == [2, 5, 7]
    assert t.remap_labels(torch.tensor([7, 2, 5, 5])).tolist() == [2, 0, 1, 1]
    logits = torch.arange(20.0).reshape(2, 10)
    assert t.restrict_logits(logits).tolist() == [[2.0, 5.0, 7.0], [12.0, 15.0, 17.0]]
    assert t.mask(8).tolist() == [False, False, True, False, False, True, False, True]
    assert t.mask(8, dtype=torch.float32).sum() == 3
    with pytest.raises(ValueError, match=r"labels \[3\] are not in the task; allowed: \[2, 5, 7\]"):
        t.remap_labels([2, 3])
    with pytest.raises(ValueError, match=r"\[7\] out of range; allowed: 0\.\.4"):
        Task((1, 7), num_classes=5)
    with pytest.raises(ValueError, match="at least one class"):
        Task(())
    with pytest.raises(ValueError, match="logits have 6 classes"):
        t.restrict_logits(torch.zeros(1, 6))
    assert Task((2, 5, 7)) == t.__class__((7, 5, 2)) and hash(Task((1,))) == hash(Task((1,)))


def test_task_from_names():
    names = ["cat", "dog", "ship"]
    assert Task.from_names(["ship", "cat"], names).classes == (0, 2)
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['horse'\]; allowed: cat, dog, ship"):
        Task.from_names(["cat", "horse"], names)


def test_task_sampler_reproducible_and_grouped():
    a = TaskSampler(10, min_classes=2, max_classes=4, seed=3)
    b = TaskSampler(10, min_classes=2, max_classes=4, seed=3)
    tasks = a.sample_many(50)
    assert tasks == b.sample_many(50)
    assert tasks != TaskSampler(10, 2, 4, seed=4).sample_many(50)
    assert {len(t) for t in tasks} == {2, 3, 4} and all(max(t.classes) < 10 for t in tasks)
    a.reset()
    it = iter(a)
    assert [next(it) for _ in range(5)] == tasks[:5]
    groups = [[0, 1], [2, 3, 4], [5], [8, 9]]
    g = TaskSampler(10, min_classes=3, max_classes=5, groups=groups, seed=0)
    for t in g.sample_many(100):
        assert 3 <= len(t) <= 5
        assert all(set(grp) <= set(t.classes) or not set(grp) & set(t.classes) for grp in groups)  # whole groups
        assert not {6, 7} & set(t.classes)  # classes in no group never appear
    with pytest.raises(ValueError, match="disjoint"):
        TaskSampler(10, groups=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"no union of groups \(sizes \[3, 3\]\)"):
        TaskSampler(10, min_classes=4, max_classes=5, groups=[[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="min_classes"):
        TaskSampler(5, min_classes=6)


def test_task_dataset_view():
    base = load_dataset("digits", "test")
    view = TaskDataset(base, Task((8, 3)))
    assert view.classes == ["3", "8"] and view.num_classes == 2
    assert len(view) == int(base.class_counts()[[3, 8]].sum())
    assert set(view.labels.tolist()) == {0, 1}
    x, y = view[0]
    assert x.shape == (1, 32, 32) and y in (0, 1)
    X, Y = view.tensors()
    assert X.shape[0] == len(view) and torch.equal(Y, view.labels)
    position = {int(i): k for k, i in enumerate(base.indices)}
    global_labels = base.labels[[position[int(i)] for i in view.indices]]
    assert torch.equal(torch.tensor([3, 8])[Y], global_labels)
    keep = TaskDataset(base, [3, 8], remap=False)
    assert set(keep.labels.tolist()) == {3, 8} and keep.num_classes == 10


def test_labeled_unlabeled_split_is_stratified_and_disjoint():
    train = load_dataset("digits", "train")
    labeled, unlabeled = labeled_unlabeled_split(train, 0.1, seed=0)
    assert len(labeled) + len(unlabeled) == len(train)
    assert _disjoint(labeled.indices, unlabeled.indices)
    expected = torch.floor(train.class_counts() * 0.1 + 0.5).long()
    assert torch.equal(labeled.class_counts(), expected)
    again, _ = labeled_unlabeled_split(train, 0.1, seed=0)
    other, _ = labeled_unlabeled_split(train, 0.1, seed=1)
    assert np.array_equal(again.indices, labeled.indices) and not np.array_equal(other.indices, labeled.indices)
    tiny, _ = labeled_unlabeled_split(train, 0.001)
    assert tiny.class_counts().tolist() == [1] * 10  # at least one labeled image per class
    with pytest.raises(ValueError, match="labeled_fraction"):
        labeled_unlabeled_split(train, 0.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.floats(0, 1), st.integers(0, 2**31))
def test_stratified_split_property(labels, fraction, seed):
    labels = np.array(labels)
    kept, held = stratified_split(labels, fraction, seed)
    assert _disjoint(kept, held) and len(kept) + len(held) == len(labels)
    for c in np.unique(labels):
        n = int((labels == c).sum())
        assert int((labels[held] == c).sum()) == int(np.floor(fraction * n + 0.5))


# ---------------------------------------------------------------------------------------------
# DataModule


def test_datamodule_batches():
    dm = data.ClassificationDataModule("digits", resolution=16, channels=3, batch_size=32, val_split=0.2)
    with pytest.raises(RuntimeError, match="setup"):
        _ = dm.num_classes
    dm.setup("fit")
    assert dm.num_classes == 10 and dm.classes[:2] == ["0", "1"]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    val = dm.val_dataloader()
    assert sum(len(b[1]) for b in val) == len(dm.datasets["val"])
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape[1:] == (3, 16, 16)
    first = [b[1].tolist() for b in dm.train_dataloader()]
    assert first == [b[1].tolist() for b in data.ClassificationDataModule("digits", resolution=16, channels=3, batch_size=32, val_split=0.2).train_dataloader()]


def test_datamodule_task():
    dm = data.ClassificationDataModule("digits", batch_size=16, task=["7", "1"])
    dm.setup()
    assert dm.num_classes == 2 and dm.classes == ["1", "7"]
    labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert set(labels.tolist()) == {0, 1}


def test_import_is_light():
    code = ("import sys, nni_eas.data; heavy = [m for m in ('PIL', 'sklearn', 'torchvision', 'pytorch_lightning', "
            "'lightning') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
