"""Image classification datasets as in-memory uint8 arrays, found locally or downloaded, decoded once.

Every dataset nni-eas trains or evaluates on is small enough to hold decoded in memory (CIFAR-10:
180 MB as uint8), and the supernet is trained at several resolutions from the same images. So
:func:`load_dataset` decodes the source files once into ``uint8 [N, H, W, C]`` arrays, caches them
as ``.npz`` (decoding 60000 JPEGs is far slower than reading one array), and returns an
:class:`ArrayDataset` that converts to normalised float tensors at any resolution and channel count
on the fly.

What each dataset is, where its files may be and how they are read is data, in ``sources.yml``.
Splits are deterministic (seeded, the same on every machine): ``train`` and ``val`` are disjoint
parts of the train pool, ``trainval`` is the whole pool, ``test`` is disjoint from both.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import tarfile
import tempfile
import warnings
import zipfile
from contextlib import suppress
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, NamedTuple, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch.utils.data import Dataset

from ..config import ConfigError
from .tasks import Task
from .sources import DatasetSpec, SourceSpec, _canonical_name, _sources, available_datasets, dataset_spec

__all__ = [
    "ArrayDataset",
    "TaskDataset",
    "labeled_unlabeled_split",
    "DatasetCacheWarning",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "SPLITS",
    "available_datasets",
    "convert_channels",
    "data_roots",
    "dataset_spec",
    "default_cache_dir",
    "default_data_home",
    "load_dataset",
    "stratified_split",
]

PathLike = Union[str, os.PathLike]
Roots = Union[PathLike, Sequence[PathLike], None]

SPLITS = ("train", "val", "test", "trainval")
ENV_DATA = "NNI_EAS_DATA"
ENV_CACHE = "NNI_EAS_CACHE"
CACHE_FILE_MODE = 0o644
CACHE_VERSION = 1  # bump when the cached arrays' meaning changes: old files are then ignored
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, what PIL's convert("L") uses
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


# --------------------------------------------------------------------------------------------
# errors


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched places. ``searched`` lists them."""

    def __init__(self, message: str, searched: Sequence[Path] = ()):
        super().__init__(message)
        self.searched = list(searched)


class DatasetCacheWarning(UserWarning):
    """A decoded-array cache file could not be read (it is rebuilt) or written (data still loads)."""


class DatasetFormatError(ValueError):
    """A source file exists but does not look like the dataset (wrong layout, unknown class)."""


# --------------------------------------------------------------------------------------------
# where files are looked for


def default_cache_dir() -> Path:
    """``$NNI_EAS_CACHE`` or ``~/.cache/nni_eas``: decoded-array caches live here."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nni_eas"


def default_data_home() -> Path:
    """Where ``download=True`` puts data when no ``root`` is given: ``$NNI_EAS_DATA`` (its first
    entry) or ``<default cache dir>/datasets``."""
    env = [p for p in os.environ.get(ENV_DATA, "").split(os.pathsep) if p]
    return Path(env[0]).expanduser() if env else default_cache_dir() / "datasets"


def _repo_root() -> Path | None:
    """The checkout this package runs from (the folder with ``pyproject.toml``), if any."""
    for parent in Path(__file__).resolve().parents[:4]:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def _as_paths(root: Roots) -> list[Path]:
    if root is None:
        return []
    if isinstance(root, (str, os.PathLike)):
        return [Path(root).expanduser()]
    return [Path(r).expanduser() for r in root]


def data_roots(root: Roots = None, system_roots: Sequence[PathLike] = ()) -> list[Path]:
    """Folders searched for data files, in order.

    An explicit ``root`` (a folder or a list of folders) is searched alone, as in torchvision, so
    that naming a folder never silently reads another copy. Otherwise: each entry of
    ``$NNI_EAS_DATA`` (``os.pathsep``-separated), ``../shared/data`` relative to the current
    directory and to the checkout, the download home, then the dataset's ``system_roots``.
    """
    if root is not None:
        return _as_paths(root)
    roots = _as_paths([p for p in os.environ.get(ENV_DATA, "").split(os.pathsep) if p])
    roots.append(Path.cwd().parent / "shared" / "data")
    repo = _repo_root()
    if repo is not None:
        roots.append(repo.parent / "shared" / "data")
    roots.append(default_data_home())
    roots.extend(Path(p) for p in system_roots)
    unique: dict[str, Path] = {}
    for r in roots:
        unique.setdefault(os.path.normpath(os.path.abspath(r)), r)
    return [Path(k) for k in unique]


def _locate(spec: DatasetSpec, roots: Sequence[Path]) -> tuple[SourceSpec, list[Path]] | list[Path]:
    """The first source layout whose files all exist, or every path that was tried."""
    searched: list[Path] = []
    for src in spec.sources:
        if not src.paths:  # embedded (e.g. scikit-learn's digits): needs no files
            return src, []
    for root in roots:
        for src in spec.sources:
            candidates = [root / p for p in src.paths]
            if all(c.exists() for c in candidates):
                return src, candidates
            searched.extend(c for c in candidates if c not in searched)
    return searched


def _not_found(name: str, spec: DatasetSpec, searched: Sequence[Path], explicit_root: bool) -> DatasetNotFoundError:
    lines = [f"dataset {name!r} not found. Searched {len(searched)} path(s):"]
    lines += [f"  {p}" for p in searched]
    lines.append("To get it:")
    if spec.download is not None:
        lines.append("  - pass download=True (needs internet)" + ("" if explicit_root else f"; it goes to {default_data_home()}"))
    if spec.hint:
        lines.append(f"  - {spec.hint}")
    lines.append(f"  - or put the files in a folder and pass root=<folder> or set {ENV_DATA}=<folder>; "
                 f"layouts understood: {', '.join(' + '.join(s.paths) for s in spec.sources if s.paths)}")
    return DatasetNotFoundError("\n".join(lines), searched)


# --------------------------------------------------------------------------------------------
# reading files: one small function per format, registered by name for sources.yml


class _Pool(NamedTuple):
    """A decoded source split: ``images`` uint8 [N, H, W, C], ``labels`` int64 [N], class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]


Reader = Callable[[list[Path], DatasetSpec, str, Union[int, None]], _Pool]
_READERS: dict[str, Reader] = {}


def _reader(fmt: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        _READERS[fmt] = fn
        return fn

    return register


def _parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _iter_files(path: Path, want: Callable[[list[str]], bool]) -> Iterator[tuple[list[str], bytes]]:
    """``(path parts, bytes)`` of the wanted files of a folder, zip or tar archive (tar is streamed,
    so unwanted members are skipped without being kept)."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            parts = _parts(p.relative_to(path).as_posix())
            if p.is_file() and want(parts):
                yield parts, p.read_bytes()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                parts = _parts(info.filename)
                if not info.is_dir() and want(parts):
                    yield parts, zf.read(info)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r|*") as tf:
            for member in tf:
                parts = _parts(member.name)
                if member.isfile() and want(parts):
                    yield parts, tf.extractfile(member).read()
    else:
        raise DatasetFormatError(f"{path}: not a folder, zip or tar archive")


def _is_image(parts: list[str]) -> bool:
    return bool(parts) and parts[-1].lower().endswith(IMAGE_SUFFIXES) and not parts[-1].startswith(".")


def _resize_crop(img: Any, size: int) -> Any:
    """Shorter side to ``size`` (PIL bilinear, antialiased when shrinking), then a centre square."""
    from PIL import Image

    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_image(data: bytes, channels: int, size: int | None = None) -> np.ndarray:
    """Encoded image bytes -> uint8 ``[H, W, channels]``, resized and centre-cropped to ``size``."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    with Image.open(io.BytesIO(data)) as img:
        if size is not None:
            img.draft(mode, (size, size))  # JPEG: decode at the smallest DCT scale >= size (fast, exact)
        img.load()
        if img.mode != mode:
            img = img.convert(mode)
    if size is not None:
        img = _resize_crop(img, size)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _stack(items: list[tuple[int, str, bytes]], spec: DatasetSpec, size: int | None, source: str) -> np.ndarray:
    images = [decode_image(data, spec.channels, size) for _, _, data in items]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DatasetFormatError(f"{source}: images of different sizes {sorted(shapes)}; pass decode_size=<int>")
    if not images:
        raise DatasetFormatError(f"{source}: no images found")
    return np.stack(images)


def _class_index(classes: Sequence[str], name: str, source: Path) -> int:
    try:
        return list(classes).index(name)
    except ValueError:
        raise DatasetFormatError(f"{source}: unknown class folder {name!r}; allowed: {', '.join(classes)}") from None


@_reader("split_class_folders")
def _read_split_class_folders(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """``.../<split>/<class>/<image>`` in a folder or archive (this project's CIFAR-10 copy)."""
    assert spec.classes is not None
    items = []
    for path in paths:
        for parts, data in _iter_files(path, lambda p: len(p) >= 3 and p[-3] == variant and _is_image(p)):
            items.append((_class_index(spec.classes, parts[-2], path), "/".join(parts), data))
    items.sort(key=lambda t: (t[0], t[1]))
    images = _stack(items, spec, size, " + ".join(map(str, paths)))
    return _Pool(images, np.array([t[0] for t in items], dtype=np.int64), list(spec.classes))


@_reader("cifar_pickle")
def _read_cifar_pickle(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """torchvision's ``cifar-10-batches-py`` (python pickles, read with numbers-only unpickling)."""
    from ..io import _RestrictedUnpickler

    assert spec.classes is not None
    folder = paths[0]
    names = [f"data_batch_{i}" for i in range(1, 6)] if variant == "train" else ["test_batch"]
    data, labels = [], []
    for n in names:
        with open(folder / n, "rb") as f:  # python-2 pickles: latin1 keeps their byte strings intact
            batch = _RestrictedUnpickler(f, encoding="latin1").load()
        batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data.append(np.asarray(batch["data"], dtype=np.uint8))
        labels.extend(int(v) for v in batch["labels"])
    images = np.concatenate(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    if size is not None and size != 32:
        raise ConfigError(f"decode_size={size} is not supported for {folder} (32x32 arrays)")
    return _Pool(np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64), list(spec.classes))


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST format), gzipped or not, as a uint8 array of its declared shape."""
    import gzip

    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetFormatError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetFormatError(f"{path}: {data.size} values, header says {shape}")
    return data.reshape(shape).copy()  # frombuffer is read-only; datasets own writable arrays


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(f"{folder}: neither {stem} nor {stem}.gz", [folder / stem, folder / f"{stem}.gz"])


@_reader("idx")
def _read_idx_folder(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` (MNIST/Fashion-MNIST)."""
    assert spec.classes is not None
    prefix = "train" if variant == "train" else "t10k"
    images = read_idx(_find_idx(paths[0], f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(paths[0], f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if size is not None:
        raise ConfigError(f"decode_size is not supported for idx files ({paths[0]})")
    return _Pool(np.ascontiguousarray(images[..., None]), labels, list(spec.classes))


@_reader("sklearn_digits")
def _read_sklearn_digits(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """scikit-learn's embedded 8x8 digits; values 0..16 scaled to 0..255 (rounded)."""
    from sklearn.datasets import load_digits

    assert spec.classes is not None
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    return _Pool(images, bunch.target.astype(np.int64), list(spec.classes))


@_reader("class_tree")
def _read_class_tree(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """``.../<group>/<class>/<image>`` (Omniglot: alphabet/character); classes are named
    ``group/class``, and the same file found in several paths is read once."""
    found: dict[str, dict[str, bytes]] = {}
    for path in paths:
        for parts, data in _iter_files(path, lambda p: len(p) >= 3 and _is_image(p)):
            found.setdefault(f"{parts[-3]}/{parts[-2]}", {}).setdefault(parts[-1], data)
    classes = sorted(found)
    items = [(i, fname, found[c][fname]) for i, c in enumerate(classes) for fname in sorted(found[c])]
    images = _stack(items, spec, size, " + ".join(map(str, paths)))
    return _Pool(images, np.array([t[0] for t in items], dtype=np.int64), classes)


_NUMBERED = re.compile(r"image_(\d+)\.jpe?g$", re.IGNORECASE)


@_reader("numbered_images")
def _read_numbered_images(paths: list[Path], spec: DatasetSpec, variant: str, size: int | None) -> _Pool:
    """``image_NNNN.jpg`` whose class is ``(NNNN - 1) // images_per_class`` (Oxford Flowers 17)."""
    assert spec.classes is not None and spec.images_per_class is not None
    items = []
    for path in paths:
        for parts, data in _iter_files(path, lambda p: bool(p) and _NUMBERED.search(p[-1]) is not None):
            number = int(_NUMBERED.search(parts[-1]).group(1))
            label = (number - 1) // spec.images_per_class
            if not 0 <= label < len(spec.classes):
                raise DatasetFormatError(f"{path}: {parts[-1]} is beyond the {len(spec.classes)} classes")
            items.append((label, f"{number:08d}", data))
    items.sort(key=lambda t: (t[0], t[1]))
    images = _stack(items, spec, size, " + ".join(map(str, paths)))
    return _Pool(images, np.array([t[0] for t in items], dtype=np.int64), list(spec.classes))


# --------------------------------------------------------------------------------------------
# decoded-array cache


def _fingerprint(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every source file: a changed or moved source gives a new cache key."""
    entries = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        else:
            files = [path]
        for f in files:
            st = f.stat()
            entries.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    return entries


def _cache_file(cache_dir: Path, name: str, variant: str, size: int | None, src: SourceSpec, paths: Sequence[Path]) -> Path:
    key = repr((CACHE_VERSION, name, variant, size, src.format, _fingerprint(paths)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{name}-{variant}-{size or 'native'}px-{digest}.npz"


def _read_cache(path: Path) -> _Pool:
    with np.load(path, allow_pickle=False) as z:
        version = int(z["version"])
        images, labels, classes = z["images"], z["labels"], [str(c) for c in z["classes"]]
    if version != CACHE_VERSION:
        raise ValueError(f"cache format {version}, expected {CACHE_VERSION}")
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(f"inconsistent arrays: images {images.dtype} {images.shape}, labels {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError("labels out of range of the class list")
    return _Pool(images, labels.astype(np.int64, copy=False), classes)


def _write_cache(path: Path, pool: _Pool) -> None:
    """Write to a temporary file in the same folder, then rename: readers (and a kill in the middle)
    see either no cache file or a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, version=np.int64(CACHE_VERSION), images=pool.images, labels=pool.labels,
                     classes=np.array(pool.classes, dtype=np.str_))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, CACHE_FILE_MODE)  # mkstemp makes 0600; a shared cache should be readable
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _cached(path: Path, build: Callable[[], _Pool]) -> _Pool:
    if path.exists():
        try:
            return _read_cache(path)
        except Exception as e:  # truncated, garbage, wrong version: any of these means rebuild
            warnings.warn(f"dataset cache {path} is unreadable ({type(e).__name__}: {e}); rebuilding it",
                          DatasetCacheWarning, stacklevel=4)
    pool = build()
    try:
        _write_cache(path, pool)
    except OSError as e:
        warnings.warn(f"could not write dataset cache {path} ({e}); continuing without it",
                      DatasetCacheWarning, stacklevel=4)
    return pool


# --------------------------------------------------------------------------------------------
# download (users with internet; the local copies are what tests use)


def _download(name: str, spec: DatasetSpec, target: Path) -> None:
    d = spec.download
    if d is None:
        raise ConfigError(f"dataset {name!r} has no download source; {spec.hint}")
    target.mkdir(parents=True, exist_ok=True)
    if d.method == "torchvision":
        import torchvision.datasets

        cls = getattr(torchvision.datasets, d.dataset or "", None)
        if cls is None:
            raise ConfigError(f"sources.yml: datasets.{name}.download.dataset: torchvision.datasets has no {d.dataset!r}")
        cls(root=str(target), download=True, **d.args)
    else:
        from torchvision.datasets.utils import download_and_extract_archive

        dest = target / d.subdir if d.subdir else target
        download_and_extract_archive(d.url, download_root=str(dest), md5=d.md5)


# --------------------------------------------------------------------------------------------
# splits


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def stratified_split(labels: np.ndarray | torch.Tensor, fraction: float, seed: int,
                     min_per_class: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(kept, held)`` index arrays (sorted): ``held`` has ``round(fraction * n_c)`` (at
    least ``min_per_class``, at most ``n_c``) of every class ``c``, chosen at random."""
    if not 0 <= fraction <= 1:
        raise ConfigError(f"fraction must be in [0, 1], got {fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(idx), max(min_per_class if fraction > 0 else 0, _round_half_up(fraction * len(idx))))
        held.append(idx[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_idx, assume_unique=True)
    return kept.astype(np.int64), held_idx.astype(np.int64)


def _per_class_split(labels: np.ndarray, train_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, test)``: ``train_per_class`` images of every class train, the rest test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) <= train_per_class:
            raise DatasetFormatError(f"class {c} has {len(idx)} images; the split needs more than {train_per_class}")
        train.append(idx[:train_per_class])
        test.append(idx[train_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _split_indices(spec: DatasetSpec, split: str, labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Indices of ``split`` in the pool (the native train or test set, or all images)."""
    if spec.split.kind == "native":
        if split == "test":
            return np.arange(len(labels))
        pool = np.arange(len(labels))
    elif spec.split.kind == "stratified":
        pool, test = stratified_split(labels, spec.split.test_fraction or 0.0, seed)
        if split == "test":
            return test
    else:
        pool, test = _per_class_split(labels, spec.split.train_per_class or 0, seed)
        if split == "test":
            return test
    if split == "trainval":
        return pool
    train, val = stratified_split(labels[pool], val_fraction, seed + 1)
    return pool[val] if split == "val" else pool[train]


def _fixed_order(idx: np.ndarray, pool_size: int, seed: int) -> np.ndarray:
    """``idx`` in one seeded random order of the pool: sources are stored grouped by class, and
    a split in that order would make any prefix (a BN-calibration batch, ``X[:500]``) one class."""
    rank = np.empty(pool_size, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(pool_size)] = np.arange(pool_size)
    return idx[np.argsort(rank[idx], kind="stable")]


# --------------------------------------------------------------------------------------------
# the dataset


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``[B, C, H, W]`` float images to ``channels``: gray -> RGB repeats, RGB -> gray is luminance."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise ConfigError(f"channels: cannot convert {c} channels to {channels}; allowed: 1, 3")


def _convert_stats(values: Sequence[float], channels: int) -> tuple[float, ...]:
    """Mean/std of the converted images, from the stored ones (RGB -> gray: luminance-weighted,
    exact for the mean, an upper bound for the std that is tight for correlated channels)."""
    if len(values) == channels:
        return tuple(float(v) for v in values)
    if len(values) == 1:
        return (float(values[0]),) * channels
    return (float(sum(w * v for w, v in zip(LUMA, values))),)


class _Labeled:
    """``num_classes`` and ``targets`` of a dataset with ``classes`` and ``labels``."""

    classes: list[str]
    labels: torch.Tensor

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def targets(self) -> torch.Tensor:
        return self.labels


class ArrayDataset(_Labeled, Dataset):
    """Decoded images (uint8 ``[N, H, W, C]``) and labels, served as normalised float tensors.

    ``dataset[i]`` is ``(float32 [C, R, R], label)``: channels converted to ``channels``, resized
    to ``resolution`` (bilinear; antialiased when shrinking), normalised with ``mean``/``std``,
    then passed through ``transform`` (augmentation) if given. The uint8 arrays are shared by
    :meth:`subset` and :meth:`with_options`, so views cost no memory.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor | Sequence[int],
                 classes: Sequence[str], *, name: str = "array", split: str | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 resolution: int | None = None, channels: int | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 indices: np.ndarray | None = None, source: str | None = None):
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if images.dim() == 3:
            images = images.unsqueeze(-1)
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] not in (1, 3):
            raise ConfigError(f"images: expected uint8 [N, H, W, C] with C in (1, 3), got {images.dtype} {tuple(images.shape)}")
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
        if len(labels) != len(images):
            raise ConfigError(f"labels: {len(labels)} labels for {len(images)} images")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
            raise ConfigError(f"labels: values must be in [0, {len(classes)}), got [{int(labels.min())}, {int(labels.max())}]")
        if channels not in (None, 1, 3):
            raise ConfigError(f"channels: got {channels!r}; allowed: None, 1, 3")
        if resolution is not None and (not isinstance(resolution, int) or resolution <= 0):
            raise ConfigError(f"resolution: expected a positive int or None, got {resolution!r}")
        self.images = images
        self.labels = labels
        self.classes = list(classes)
        self.name = name
        self.split = split
        stored_c = images.shape[-1]
        if mean is None or std is None:  # user arrays: measure them
            x = images.reshape(-1, stored_c).float().div_(255)
            mean, std = x.mean(0).tolist(), x.std(0).clamp_min(1e-6).tolist()
        self.stored_mean = tuple(float(m) for m in mean)
        self.stored_std = tuple(float(s) for s in std)
        self.resolution = resolution or images.shape[1]
        self.channels = channels or stored_c
        self.transform = transform
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.source = source or name

    # ---- facts
    @property
    def image_size(self) -> int:
        """Side of the stored (decoded) images."""
        return int(self.images.shape[1])

    @property
    def mean(self) -> tuple[float, ...]:
        """Normalisation mean of the output channels."""
        return _convert_stats(self.stored_mean, self.channels)

    @property
    def std(self) -> tuple[float, ...]:
        return _convert_stats(self.stored_std, self.channels)

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, classes={self.num_classes}, "
                f"stored={tuple(self.images.shape[1:])}, out=[{self.channels}, {self.resolution}, {self.resolution}])")

    # ---- conversion
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W, C]`` -> normalised float32 ``[B, channels, R, R]`` (deterministic)."""
        x = images.permute(0, 3, 1, 2).float().div_(255)
        x = convert_channels(x, self.channels)
        r = self.resolution
        if tuple(x.shape[-2:]) != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=r < min(x.shape[-2:]))
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.preprocess(self.images[index:index + 1] if index >= 0 else self.images[index].unsqueeze(0))[0]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[index])

    def tensors(self, chunk_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as ``(float32 [N, C, R, R], int64 [N])``, without ``transform``: for
        full-batch demos, tests and evaluation on small data."""
        if len(self) == 0:
            return torch.zeros(0, self.channels, self.resolution, self.resolution), self.labels.clone()
        xs = [self.preprocess(self.images[i:i + chunk_size]) for i in range(0, len(self), chunk_size)]
        return torch.cat(xs), self.labels.clone()

    as_tensor = tensors

    # ---- views
    def _clone(self, images: torch.Tensor, labels: torch.Tensor, indices: np.ndarray, **changes: Any) -> "ArrayDataset":
        kwargs: dict[str, Any] = dict(name=self.name, split=self.split, mean=self.stored_mean, std=self.stored_std,
                                      resolution=self.resolution, channels=self.channels, transform=self.transform,
                                      source=self.source)
        kwargs.update(changes)
        return ArrayDataset(images, labels, self.classes, indices=indices, **kwargs)

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor, split: str | None = None) -> "ArrayDataset":
        """The images at ``indices`` (positions in this dataset); ``indices`` of the result still
        point into the source pool, so subsets of one pool can be checked for overlap."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        t = torch.from_numpy(idx)
        return self._clone(self.images[t], self.labels[t], self.indices[idx], split=split or self.split)

    def with_options(self, **changes: Any) -> "ArrayDataset":
        """The same images with other ``resolution``, ``channels``, ``transform``, ``split``..."""
        allowed = {"resolution", "channels", "transform", "split", "name"}
        unknown = set(changes) - allowed
        if unknown:
            raise ConfigError(f"with_options: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return self._clone(self.images, self.labels, self.indices, **changes)


# --------------------------------------------------------------------------------------------
# the entry point


def _load_pool(name: str, spec: DatasetSpec, variant: str, *, root: Roots, download: bool,
               cache_dir: Path, size: int | None) -> tuple[_Pool, str]:
    roots = data_roots(root, spec.system_roots)
    found = _locate(spec, roots)
    if isinstance(found, list) and download:
        target = roots[0] if root is not None else default_data_home()
        _download(name, spec, target)
        found = _locate(spec, [target])
    if isinstance(found, list):
        raise _not_found(name, spec, found, explicit_root=root is not None)
    src, paths = found
    reader = _READERS.get(src.format)
    if reader is None:
        raise ConfigError(f"sources.yml: datasets.{name}.sources: unknown format {src.format!r}; "
                          f"allowed: {', '.join(sorted(_READERS))}")
    build = functools.partial(reader, paths, spec, variant, size)
    pool = _cached(_cache_file(cache_dir, name, variant, size, src, paths), build) if src.cache else build()
    return pool, " + ".join(map(str, paths)) or src.format


def load_dataset(name: str, split: str = "train", *, root: Roots = None, resolution: int | None = None,
                 channels: int | None = None, download: bool = False, cache_dir: PathLike | None = None,
                 decode_size: int | None = None, val_fraction: float | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> ArrayDataset:
    """Load one split of a dataset named in ``sources.yml`` as an :class:`ArrayDataset`.

    Args:
        name: ``digits``, ``cifar10``, ``fashion_mnist``, ``omniglot`` or ``flowers17``.
        split: ``train``, ``val`` (a seeded stratified ``val_fraction`` of the train pool, never
            overlapping ``train``), ``trainval`` (both) or ``test``.
        root: folder(s) holding the files; searched alone when given (see :func:`data_roots`).
        resolution: output side in pixels (default: the dataset's ``resolution``, else the stored size).
        channels: 1 or 3 output channels (default: the dataset's own).
        download: fetch the data when it is found nowhere (torchvision / the URL in ``sources.yml``).
        cache_dir: where decoded arrays are cached (default :func:`default_cache_dir`).
        decode_size: side the images are decoded to, for datasets that have ``decode_size``.
        val_fraction: share of each class held out as ``val`` (default from ``sources.yml``).
        transform: applied to each float image in ``__getitem__`` (augmentation).
    """
    key = _canonical_name(name)
    spec = dataset_spec(key)
    defaults = _sources().defaults
    if split not in SPLITS:
        raise ConfigError(f"split: got {split!r}; allowed: {', '.join(SPLITS)}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels: got {channels!r}; allowed: None, 1, 3")
    if decode_size is not None and spec.decode_size is None:
        allowed = [n for n, s in _sources().datasets.items() if s.decode_size is not None]
        raise ConfigError(f"decode_size: {key!r} is stored at its native size; decode_size applies to: {', '.join(allowed)}")
    if decode_size is not None and (not isinstance(decode_size, int) or decode_size <= 0):
        raise ConfigError(f"decode_size: expected a positive int, got {decode_size!r}")
    val_fraction = defaults.val_fraction if val_fraction is None else val_fraction
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction: must be in [0, 1), got {val_fraction!r}")
    size = decode_size or spec.decode_size
    variant = ("test" if split == "test" else "train") if spec.split.kind == "native" else "all"
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    pool, where = _load_pool(key, spec, variant, root=root, download=download, cache_dir=cache, size=size)
    idx = _split_indices(spec, split, pool.labels, val_fraction, defaults.split_seed)
    idx = _fixed_order(idx, len(pool.labels), defaults.split_seed)
    images = torch.from_numpy(pool.images)[torch.from_numpy(idx)]
    return ArrayDataset(images, pool.labels[idx], pool.classes, name=key, split=split, mean=spec.mean, std=spec.std,
                        resolution=resolution or spec.resolution, channels=channels, transform=transform,
                        indices=idx, source=f"{key}:{variant}@{where}")


# --------------------------------------------------------------------------------------------
# views: one task's images, labeled / unlabeled parts


class TaskDataset(_Labeled, Dataset):
    """The images of ``dataset`` whose class is in ``task``; labels renumbered ``0..k-1`` (in task
    order) when ``remap``, else kept global."""

    def __init__(self, dataset: ArrayDataset, task: Task | Sequence[int], remap: bool = True):
        task = task if isinstance(task, Task) else Task(tuple(task))
        task.validate(dataset.num_classes)
        keep = task.mask(dataset.num_classes)[dataset.labels]
        self.base = dataset.subset(torch.nonzero(keep).flatten().numpy())
        self.task = task
        self.remap = remap
        self.labels = task.remap_labels(self.base.labels) if remap else self.base.labels.clone()
        self.classes = task.names(dataset.classes) if remap else list(dataset.classes)

    @property
    def indices(self) -> np.ndarray:
        """Positions in the source pool (as :attr:`ArrayDataset.indices`)."""
        return self.base.indices

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, _ = self.base[index]
        return x, int(self.labels[index])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images and (remapped) labels as two tensors, like :meth:`ArrayDataset.tensors`."""
        x, _ = self.base.tensors()
        return x, self.labels.clone()

    as_tensor = tensors

    def __repr__(self) -> str:
        return f"TaskDataset({self.base.name!r}, task={list(self.task.classes)}, n={len(self)}, remap={self.remap})"


def labeled_unlabeled_split(dataset: ArrayDataset, labeled_fraction: float,
                            seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
    """Seeded stratified ``(labeled, unlabeled)`` views of ``dataset`` for semi-supervised training:
    ``round(labeled_fraction * n_c)`` images of every class ``c`` (at least one) are labeled."""
    if not 0 < labeled_fraction <= 1:
        raise ConfigError(f"labeled_fraction: must be in (0, 1], got {labeled_fraction!r}")
    unlabeled, labeled = stratified_split(dataset.labels.numpy(), labeled_fraction, seed, min_per_class=1)
    split = dataset.split or "data"
    return dataset.subset(labeled, split=f"{split}-labeled"), dataset.subset(unlabeled, split=f"{split}-unlabeled")
