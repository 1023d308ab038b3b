"""Image sources -> arrays: CIFAR-10 from TFDS, an image folder (cached or streamed), or
synthetic data.

Every source returns the same ``CifarData``: uint8 images ``(N, S, S, 3)`` in
channels-last order (S is 32 for CIFAR-10; an image folder's images are resized to its
``image_size``), int64 labels ``(N,)``, the class names and a short description of where
the data came from. An image folder whose decoded arrays would not fit the memory budget
is not decoded up front: its images are ``ImageFiles``, decoded batch by batch while
training. Nothing here imports Keras or TensorFlow at module level; ``load_tfds`` imports
``tensorflow_datasets`` only when called.

Example:
    >>> data = load_cifar10(synthetic=True)
    >>> data.x_train.shape, data.y_train.dtype  # doctest: +SKIP
    ((512, 32, 32, 3), dtype('int64'))
"""

from __future__ import annotations

import colorsys
import concurrent.futures
import dataclasses
import hashlib
import os
import socket
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from keras_resnet import atomic, extras
from keras_resnet.validation import check_integer

IMAGE_SHAPE = (32, 32, 3)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SPLITS = ("train", "test")
# Where tfds downloads CIFAR-10 from (tensorflow_datasets/image_classification/cifar.py).
TFDS_DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)
NETWORK_PROBE_TIMEOUT_S = 3.0
# Bump when the cache layout changes, so old cache files are not read.
CACHE_FORMAT_VERSION = 1
# The side images are resized to when ``image_size`` is not given: 32 (no resizing) for a
# folder of 32x32 images, else 128. At 128 the models' ImageNet stem (models.resolve_stem)
# divides the side by 4, so a ResNet costs about what it costs on 32x32 images with the
# CIFAR stem, while the images keep 16 times the pixels; larger sides cost quadratically.
CIFAR_IMAGE_SIZE = 32
DEFAULT_LARGE_IMAGE_SIZE = 128
# How many images (spread over the training split) decide the default size.
SIZE_SAMPLE = 256
# Decoded arrays (train + test) larger than this many MiB are streamed from disk instead.
DEFAULT_MEMORY_BUDGET_MB = 2048

_ALTERNATIVES = (
    "Use an image folder instead: --data-dir DIR (Python: load_cifar10(data_dir=DIR)) with "
    "DIR/train/<class>/*.png|jpg and DIR/test/<class>/*.png|jpg, such as the CIFAR-10 JPEG "
    "copy; or --synthetic (load_cifar10(synthetic=True)) for a smoke test."
)


class DataSourceError(RuntimeError):
    """A data source is unavailable or malformed; the message says what to do.

    Example:
        >>> try:
        ...     load_image_folder("/no/such/folder")
        ... except DataSourceError as err:
        ...     print("cannot load:", str(err).split(":")[0])
        cannot load: Image folder not found
    """


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class CifarData:
    """CIFAR-style arrays from any source, validated on construction.

    Attributes:
        x_train: uint8 images, shape ``(N, S, S, 3)``, channels-last; or ``ImageFiles``
            (decoded on demand) for a streamed image folder.
        y_train: int64 labels in ``[0, len(class_names))``, shape ``(N,)``.
        x_test: uint8 images, shape ``(M, S, S, 3)``, or ``ImageFiles``.
        y_test: int64 labels, shape ``(M,)``.
        class_names: the name of each label index.
        source: a short description, e.g. ``"tfds:cifar10"``, ``"folder:/abs/path"``.

    Example:
        >>> data = make_synthetic(num_train=64, num_test=16)
        >>> data.num_classes, len(data.x_train)
        (10, 64)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        num_classes = len(self.class_names)
        for split in SPLITS:
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if isinstance(x, ImageFiles):
                pass
            elif not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4):
                raise ValueError(
                    f"x_{split} must be a uint8 array of shape (N, H, W, 3). Received: "
                    f"x_{split} with type={type(x).__name__}, "
                    f"dtype={getattr(x, 'dtype', None)}, shape={getattr(x, 'shape', None)}"
                )
            if x.shape[-1] != 3:
                raise ValueError(
                    f"x_{split} must be channels-last RGB (last axis 3). "
                    f"Received: x_{split}.shape={x.shape}"
                )
            if not (isinstance(y, np.ndarray) and y.dtype == np.int64 and y.ndim == 1):
                raise ValueError(
                    f"y_{split} must be an int64 array of shape (N,). Received: "
                    f"y_{split} with dtype={getattr(y, 'dtype', None)}, "
                    f"shape={getattr(y, 'shape', None)}"
                )
            if len(x) != len(y):
                raise ValueError(
                    f"x_{split} and y_{split} must have the same length. "
                    f"Received: len(x_{split})={len(x)}, len(y_{split})={len(y)}"
                )
            if len(y) and (y.min() < 0 or y.max() >= num_classes):
                raise ValueError(
                    f"y_{split} must hold labels in [0, {num_classes}) for "
                    f"{num_classes} class names. Received: labels in "
                    f"[{y.min()}, {y.max()}]"
                )

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"CifarData(train={self.x_train.shape}, test={self.x_test.shape}, "
            f"classes={self.num_classes}, source={self.source!r})"
        )


# --------------------------------------------------------------------------- dispatch


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    synthetic: bool = False,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    image_size: int | None = None,
    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB,
) -> CifarData:
    """Load CIFAR-10 (or an image folder) from the source the arguments select.

    ``synthetic=True`` -> ``make_synthetic()``; else ``data_dir`` -> ``load_image_folder``;
    else ``load_tfds()`` (TFDS's default data dir, or ``$TFDS_DATA_DIR``). An
    ``image_size`` other than the source's resizes its images (``resize_images``).

    Example:
        >>> data = load_cifar10(data_dir="../shared/datasets/cifar10-jpeg")  # doctest: +SKIP
        >>> data.x_train.shape  # doctest: +SKIP
        (50000, 32, 32, 3)
    """
    if data_dir is not None and not synthetic:
        return load_image_folder(
            data_dir,
            cache_dir=cache_dir,
            progress=progress,
            image_size=image_size,
            memory_budget_mb=memory_budget_mb,
            min_classes=2,  # training a classifier; evaluating one may take any subset
        )
    dataset = make_synthetic() if synthetic else load_tfds()
    if image_size is None or image_size == dataset.x_train.shape[1]:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=resize_images(dataset.x_train, image_size),
        x_test=resize_images(dataset.x_test, image_size),
    )


# --------------------------------------------------------------------------- tfds


def _probe_tcp(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _network_available(
    address: tuple[str, int] = TFDS_DOWNLOAD_HOST, timeout: float = NETWORK_PROBE_TIMEOUT_S
) -> bool:
    """Whether a TCP connection to ``address`` opens within about ``timeout`` seconds.

    Runs in a daemon thread so that a stalled DNS lookup (not covered by the socket
    timeout) cannot hold the caller longer than ``timeout`` plus a second.
    """
    result = []
    thread = threading.Thread(
        target=lambda: result.append(_probe_tcp(*address, timeout)), daemon=True
    )
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def load_tfds(data_dir: str | os.PathLike | None = None) -> CifarData:
    """CIFAR-10 from TensorFlow Datasets, downloading it only if the network is reachable.

    When the dataset is not prepared under ``data_dir`` (default: TFDS's data dir) and
    the download host does not answer within a few seconds, raises ``DataSourceError``
    at once instead of letting tfds retry for minutes.

    Example:
        >>> data = load_tfds()  # doctest: +SKIP
        >>> data.source  # doctest: +SKIP
        'tfds:cifar10'
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataSourceError(
            f"tensorflow_datasets is not installed, so CIFAR-10 cannot come from TFDS. "
            f"{_ALTERNATIVES}"
        ) from err

    tfds_dir = None if data_dir is None else os.fspath(Path(data_dir).expanduser())
    builder = tfds.builder("cifar10", data_dir=tfds_dir)
    if not builder.is_prepared():
        host, port = TFDS_DOWNLOAD_HOST
        if not _network_available():
            raise DataSourceError(
                f"CIFAR-10 is not prepared in the TFDS data dir {builder.data_dir_root} "
                f"and its download host {host}:{port} is unreachable (offline?). "
                f"{_ALTERNATIVES} Received: data_dir={data_dir!r}"
            )
        try:
            builder.download_and_prepare()
        except Exception as err:  # tfds raises many types; keep the cause chained.
            raise DataSourceError(
                f"Downloading CIFAR-10 with tfds into {builder.data_dir_root} failed: {err}. "
                f"{_ALTERNATIVES} Received: data_dir={data_dir!r}"
            ) from err

    splits = builder.as_dataset(split=list(SPLITS), batch_size=-1, as_supervised=True)
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(splits)
    names = tuple(builder.info.features["label"].names)
    if names == tuple(str(i) for i in range(len(CIFAR10_CLASSES))):
        names = CIFAR10_CLASSES  # info without the label file: digits only
    return CifarData(
        x_train=np.asarray(x_train, dtype=np.uint8),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=np.asarray(x_test, dtype=np.uint8),
        y_test=np.asarray(y_test, dtype=np.int64),
        class_names=names,
        source="tfds:cifar10",
    )


# --------------------------------------------------------------------------- image folder


def default_cache_dir() -> Path:
    """``$KERAS_RESNET_CACHE``, else ``$XDG_CACHE_HOME/keras_resnet`` or ``~/.cache/keras_resnet``.

    Example:
        >>> default_cache_dir().name
        'keras_resnet'
    """
    if os.environ.get("KERAS_RESNET_CACHE"):
        return Path(os.environ["KERAS_RESNET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "keras_resnet"


@dataclasses.dataclass(frozen=True)
class _FolderListing:
    class_names: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # split -> [(path, label)]
    fingerprint: str


def _scan_split(split_dir: Path, stats: list[str]) -> dict[str, list[str]]:
    """Class name -> sorted image paths; appends ``split/class/name\\tsize\\tmtime_ns``.

    Plain strings, not ``Path`` objects: for 60,000 files ``Path`` and ``relpath`` took
    most of the scan time.
    """
    classes: dict[str, list[str]] = {}
    with os.scandir(split_dir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                raise DataSourceError(
                    f"Unexpected file {entry.path}: {split_dir} must contain only class "
                    f"folders (<class>/<image>). Move or delete the file."
                )
            paths = []
            with os.scandir(entry.path) as files:
                for f in sorted(files, key=lambda e: e.name):
                    if f.name.startswith("."):
                        continue
                    if f.is_dir():
                        raise DataSourceError(
                            f"Unexpected folder {f.path}: a class folder must contain image "
                            f"files only. Move or delete the folder."
                        )
                    st = f.stat()
                    stats.append(
                        f"{split_dir.name}/{entry.name}/{f.name}\t{st.st_size}\t{st.st_mtime_ns}"
                    )
                    paths.append(f.path)
            if not paths:
                raise DataSourceError(
                    f"Class folder {entry.path} contains no image files. Add images or "
                    f"delete the folder from both train and test."
                )
            classes[entry.name] = paths
    if not classes:
        raise DataSourceError(
            f"Split folder {split_dir} contains no class folders; expected "
            f"{split_dir}/<class>/<image>.png|jpg."
        )
    return classes


def _list_image_folder(root: Path, root_arg, min_classes: int = 1) -> _FolderListing:
    if not root.exists():
        raise DataSourceError(
            f"Image folder not found: {root}. Expected {root}/train/<class>/* and "
            f"{root}/test/<class>/* (PNG, JPEG, WebP or BMP, any size); or use --synthetic for a "
            f"smoke test. Received: root={root_arg!r}"
        )
    if not root.is_dir():
        raise DataSourceError(
            f"Image folder {root} is not a folder. Expected {root}/train/<class>/* and "
            f"{root}/test/<class>/*. Received: root={root_arg!r}"
        )
    stats: list[str] = [f"format={CACHE_FORMAT_VERSION}"]
    per_split = {}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataSourceError(
                f"Image folder {root} has no '{split}' folder: expected "
                f"{split_dir}/<class>/<image>.png|jpg. Received: root={root_arg!r}"
            )
        per_split[split] = _scan_split(split_dir, stats)

    train_classes, test_classes = set(per_split["train"]), set(per_split["test"])
    if train_classes != test_classes:
        raise DataSourceError(
            f"Train and test class folders differ in {root}: missing from test: "
            f"{sorted(train_classes - test_classes)}; missing from train: "
            f"{sorted(test_classes - train_classes)}. Both splits need the same class "
            f"folders. Received: root={root_arg!r}"
        )
    if len(train_classes) < min_classes:
        raise DataSourceError(
            f"Image folder {root} has {len(train_classes)} class folder(s) "
            f"({', '.join(sorted(train_classes))}): training a classifier needs at least "
            f"{min_classes}. Add a folder per class to train and test. Received: root={root_arg!r}"
        )
    class_names = tuple(sorted(train_classes))
    files = {
        split: [(p, label) for label, c in enumerate(class_names) for p in per_split[split][c]]
        for split in SPLITS
    }
    fingerprint = hashlib.sha256("\n".join(stats).encode()).hexdigest()
    return _FolderListing(class_names, files, fingerprint)


def _decode_image(path: str, size: int = CIFAR_IMAGE_SIZE) -> np.ndarray:
    """One image file -> uint8 ``(size, size, 3)``.

    Grayscale, palette and RGBA images become RGB (the alpha channel is dropped); an image
    of another size is scaled, its shorter side to ``size`` (bilinear, antialiased), and
    cropped to the centre square, so nothing is stretched.
    """
    pil_image = extras.require("PIL", "Reading an image folder").Image

    try:
        with pil_image.open(path) as img:
            if img.mode != "RGB":
                img = img.convert("RGB")
            if img.size != (size, size):
                img = _resize_centre_crop(img, size, pil_image)
            array = np.asarray(img, dtype=np.uint8)
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
        raise DataSourceError(
            f"Cannot decode image file {path}: {type(err).__name__}: {err}. "
            f"Replace or delete the file."
        ) from err
    return array


def _resize_centre_crop(img, size: int, pil_image):
    width, height = img.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    img = img.resize(new, pil_image.Resampling.BILINEAR)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return img.crop((left, top, left + size, top + size))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images ``(N, H, W, 3)`` -> ``(N, size, size, 3)``, as an image folder's are.

    Example:
        >>> resize_images(np.zeros((2, 32, 32, 3), np.uint8), 16).shape
        (2, 16, 16, 3)
    """
    check_integer(size, "image_size", minimum=8)
    pil_image = extras.require("PIL", "Resizing images").Image
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(_resize_centre_crop(pil_image.fromarray(image), size, pil_image))
    return out


# Threads that decode the images of a streamed batch (Pillow releases the GIL while it
# decodes). Inside a batch, not across batches: Keras's threaded PyDataset reader
# (``workers`` > 1) gave other batches than a single reader under JAX (Keras 3.15).
DECODE_THREADS = min(8, os.cpu_count() or 1)
_POOL = []


def _decoder_pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(concurrent.futures.ThreadPoolExecutor(DECODE_THREADS, "decode"))
    return _POOL[0]


class ImageFiles:
    """Image files decoded on demand: ``files[indices]`` -> uint8 ``(n, S, S, 3)`` (or
    ``(n, 3, S, S)`` with ``channels_first``), each image as ``_decode_image`` makes it.

    What a streamed image folder holds instead of arrays. ``take`` selects images without
    decoding them (as ``numpy.take`` does for arrays); ``recipe.pipeline.EpochBatches``
    reads them batch by batch, each batch's images decoded in ``DECODE_THREADS`` threads.

    Example:
        >>> files = ImageFiles(["a.png", "b.png"], image_size=64)
        >>> files.shape, files.take([1]).paths
        ((2, 64, 64, 3), ('b.png',))
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths, image_size: int, channels_first: bool = False):
        check_integer(image_size, "image_size", minimum=8)
        self.paths = tuple(str(p) for p in paths)
        self.image_size, self.channels_first = int(image_size), bool(channels_first)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        side = self.image_size
        return (len(self), 3, side, side) if self.channels_first else (len(self), side, side, 3)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def take(self, indices, axis: int = 0) -> ImageFiles:
        """The images at ``indices``, still on disk."""
        if axis != 0:
            raise ValueError(f"ImageFiles are taken along axis 0. Received: axis={axis}")
        return ImageFiles(
            [self.paths[i] for i in np.asarray(indices, dtype=np.int64).reshape(-1)],
            self.image_size,
            self.channels_first,
        )

    def with_channels_first(self) -> ImageFiles:
        """The same files, decoded as ``(3, S, S)``."""
        return ImageFiles(self.paths, self.image_size, channels_first=True)

    def __getitem__(self, indices) -> np.ndarray:
        if isinstance(indices, slice):
            indices = range(*indices.indices(len(self)))
        paths = [self.paths[i] for i in np.asarray(indices).reshape(-1)]
        images = np.stack(
            list(_decoder_pool().map(_decode_image, paths, [self.image_size] * len(paths)))
        )
        return images.transpose(0, 3, 1, 2) if self.channels_first else images

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, {self.image_size}x{self.image_size})"


def take(images, indices):
    """``images[indices]`` for arrays; ``images.take(indices)`` (nothing decoded) for files.

    Example:
        >>> take(np.arange(5), [4, 0]).tolist()
        [4, 0]
    """
    if isinstance(images, ImageFiles):
        return images.take(indices)
    return images[np.asarray(indices, dtype=np.int64)]


def default_image_size(paths, sample: int = SIZE_SAMPLE) -> int:
    """32 when every sampled image (``sample`` spread over ``paths``) is 32x32, else 128.

    Example:
        >>> default_image_size([])
        32
    """
    pil_image = extras.require("PIL", "Reading an image folder").Image
    if not paths:
        return CIFAR_IMAGE_SIZE
    picks = np.unique(np.linspace(0, len(paths) - 1, min(sample, len(paths))).astype(int))
    for i in picks:
        try:
            with pil_image.open(paths[i]) as img:
                size = img.size
        except Exception:  # an undecodable file is reported when it is decoded
            continue
        if size != (CIFAR_IMAGE_SIZE, CIFAR_IMAGE_SIZE):
            return DEFAULT_LARGE_IMAGE_SIZE
    return CIFAR_IMAGE_SIZE


class _Progress:
    """A one-line stderr progress report: updated in place on a terminal, every 10% if not."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled and total > 0
        self.tty = self.enabled and sys.stderr.isatty()
        self.start = self.last = time.monotonic()
        self.next_fraction = 0.1

    def update(self, done: int):
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.1 and done < self.total:
                return
            end = "\n" if done >= self.total else ""
            sys.stderr.write(f"\r{self._line(done, now)}{end}")
        else:
            if done / self.total < self.next_fraction and done < self.total:
                return
            while self.next_fraction <= done / self.total:
                self.next_fraction += 0.1
            sys.stderr.write(self._line(done, now) + "\n")
        sys.stderr.flush()
        self.last = now

    def _line(self, done: int, now: float) -> str:
        pct = 100 * done // self.total
        return f"{self.label}: {done}/{self.total} ({pct}%, {now - self.start:.1f} s)"


def _decode_split(
    items: list[tuple[str, int]], label: str, progress: bool, size: int = CIFAR_IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    # Serial on purpose: for 32x32 images Python overhead dominates, and on this 2-core
    # machine threads (GIL) and processes (startup, copies) both measured slower.
    x = np.empty((len(items), size, size, 3), dtype=np.uint8)
    y = np.fromiter((lab for _, lab in items), dtype=np.int64, count=len(items))
    bar = _Progress(label, len(items), progress)
    for i, (path, _) in enumerate(items):
        x[i] = _decode_image(path, size)
        if i % 256 == 255 or i == len(items) - 1:
            bar.update(i + 1)
    return x, y


def _cache_path(cache_dir: Path, root: Path, fingerprint: str, size: int) -> Path:
    # The size is part of the root's key (32 keeps the earlier name): caches of two sizes
    # live side by side; a changed folder replaces its caches of the same size.
    root_key = hashlib.sha256(os.fsencode(root)).hexdigest()[:8]
    if size != CIFAR_IMAGE_SIZE:
        root_key += f"-{size}px"
    return cache_dir / f"imagefolder-{root.name or 'root'}-{root_key}-{fingerprint[:16]}.npz"


def _read_cache(
    path: Path, fingerprint: str, size: int = CIFAR_IMAGE_SIZE
) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent; an unreadable or stale file is a warning."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if str(arrays["fingerprint"]) != fingerprint:
            raise ValueError("fingerprint mismatch")
        for split in SPLITS:
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if x.dtype != np.uint8 or x.shape[1:] != (size, size, 3) or y.shape != (len(x),):
                raise ValueError(f"unexpected arrays for {split}")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"Ignoring unreadable image-folder cache {path} ({type(err).__name__}: {err}); "
            f"rebuilding it.",
            stacklevel=3,
        )
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically; then drop older caches of the same root."""
    try:
        # Uncompressed: decoded JPEGs barely compress, and a plain .npz loads several
        # times faster than a zlib-compressed one.
        atomic.write_atomic(path, lambda tmp: np.savez(tmp, **arrays))
    except OSError as err:
        warnings.warn(f"Could not write image-folder cache {path}: {err}", stacklevel=3)
        return
    stem = path.name.rsplit("-", 1)[0] + "-"
    for old in path.parent.glob(f"{stem}*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
    atomic.remove_stale_partials(path.parent, older_than_s=600)


def load_image_folder(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    image_size: int | None = None,
    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB,
    min_classes: int = 1,
) -> CifarData:
    """Data from ``root/train/<class>/*`` and ``root/test/<class>/*`` images.

    Images are PNG, JPEG, WebP or BMP (anything Pillow reads), of any sizes and modes:
    grayscale, palette and RGBA images become RGB, and every image is scaled and
    centre-cropped to ``image_size`` square (default ``default_image_size``: 32 for a
    folder of 32x32 images, else 128). Class names are the sorted folder names under
    ``train``; ``test`` must have the same, and there may be any number of them (at
    least ``min_classes``).

    When the decoded arrays of both splits fit in ``memory_budget_mb`` MiB they are
    decoded once and cached as an ``.npz`` under ``cache_dir`` (default
    ``default_cache_dir()``), keyed by the size and the relative paths, sizes and
    modification times of all files, so a changed folder is decoded again. Otherwise the
    images are ``ImageFiles``, decoded batch by batch while training (streaming).

    Example:
        >>> data = load_image_folder("../shared/datasets/cifar10-jpeg")  # doctest: +SKIP
        >>> data.class_names[:2], data.x_test.shape  # doctest: +SKIP
        (('airplane', 'automobile'), (10000, 32, 32, 3))
    """
    check_integer(memory_budget_mb, "memory_budget_mb", minimum=0)
    if image_size is not None:
        check_integer(image_size, "image_size", minimum=8)
    root_arg = root
    root = Path(root).expanduser().resolve()
    listing = _list_image_folder(root, root_arg, min_classes)
    size = image_size or default_image_size([p for p, _ in listing.files["train"]])
    decoded_mib = sum(len(listing.files[s]) for s in SPLITS) * size * size * 3 / 2**20
    if decoded_mib > memory_budget_mb:
        if progress:
            print(
                f"Streaming the images of {root} from disk: decoded at {size}x{size} they "
                f"would take {decoded_mib:.0f} MiB, over the memory budget of "
                f"{memory_budget_mb} MiB (--memory-budget-mb)",
                file=sys.stderr,
            )
        split_data = {}
        for split in SPLITS:
            items = listing.files[split]
            split_data[f"x_{split}"] = ImageFiles([p for p, _ in items], size)
            split_data[f"y_{split}"] = np.array([lab for _, lab in items], dtype=np.int64)
        return CifarData(**split_data, class_names=listing.class_names, source=f"folder:{root}")

    source = f"folder:{root}"
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    cache_file = _cache_path(cache_dir, root, listing.fingerprint, size)

    arrays = _read_cache(cache_file, listing.fingerprint, size)
    if arrays is None or tuple(arrays["class_names"].tolist()) != listing.class_names:
        arrays = {"fingerprint": np.array(listing.fingerprint)}
        arrays["class_names"] = np.array(listing.class_names)
        for split in SPLITS:
            label = f"Decoding {split} images in {root}"
            x, y = _decode_split(listing.files[split], label, progress, size)
            arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        _write_cache(cache_file, arrays)
    return CifarData(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        listing.class_names,
        source,
    )


# --------------------------------------------------------------------------- synthetic


def make_synthetic(
    num_train: int = 512, num_test: int = 128, num_classes: int = 10, seed: int = 0
) -> CifarData:
    """Small generated data that a tiny model learns in a few epochs (a smoke test).

    Each class is a distinct hue with stripes at a class-specific angle; each image has
    a random stripe phase, brightness and Gaussian noise. Labels are balanced and the
    result is a deterministic function of the arguments.

    Example:
        >>> data = make_synthetic(num_train=100, num_test=20, num_classes=4, seed=1)
        >>> data.x_train.shape, data.class_names  # doctest: +SKIP
        ((100, 32, 32, 3), ('class_0', 'class_1', 'class_2', 'class_3'))
    """
    check_integer(num_train, "num_train", minimum=1)
    check_integer(num_test, "num_test", minimum=1)
    check_integer(num_classes, "num_classes", minimum=2)
    rng = np.random.default_rng(seed)
    hues = np.arange(num_classes) / num_classes
    colours = np.array([colorsys.hsv_to_rgb(h, 0.8, 0.75) for h in hues], dtype=np.float32)
    angles = np.pi * np.arange(num_classes) / num_classes
    yy, xx = np.mgrid[0 : IMAGE_SHAPE[0], 0 : IMAGE_SHAPE[1]].astype(np.float32)

    def generate(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
        theta = angles[y][:, None, None]
        stripes = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / 8 + phase)
        brightness = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1)).astype(np.float32)
        images = colours[y][:, None, None, :] * (1 + 0.3 * stripes[..., None]) * brightness
        images += rng.normal(0, 0.08, size=images.shape).astype(np.float32)
        return np.clip(images * 255, 0, 255).round().astype(np.uint8), y

    x_train, y_train = generate(num_train)
    x_test, y_test = generate(num_test)
    return CifarData(
        x_train,
        y_train,
        x_test,
        y_test,
        tuple(f"class_{k}" for k in range(num_classes)),
        "synthetic",
    )


# --------------------------------------------------------------------------- helpers


def shuffle_once(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` under the same seeded permutation (``numpy.random.default_rng(seed)``).

    Shuffle once before ``model.fit(validation_split=...)``, which takes the last
    fraction of the arrays as they are.

    Example:
        >>> x, y = shuffle_once(np.arange(5), np.arange(5), seed=42)
        >>> bool((x == y).all()), sorted(x.tolist())
        (True, [0, 1, 2, 3, 4])
    """
    if len(x) != len(y):
        raise ValueError(
            f"x and y must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    return take(x, order), y[order]


def _balanced_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices of ``y``, as class-balanced as the class sizes allow, in random order."""
    classes = rng.permutation(np.unique(y))
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    # Round-robin over the classes: the k-th pick of every class before any (k+1)-th.
    rank = np.concatenate([np.arange(len(ix)) for ix in per_class])
    order = np.concatenate(per_class)[np.argsort(rank, kind="stable")]
    return rng.permutation(order[:n])


def subset(
    data: CifarData, num_train: int | None, num_test: int | None, seed: int = 0
) -> CifarData:
    """A seeded, class-balanced subset (``None`` keeps a split whole), for quick runs.

    Example:
        >>> small = subset(make_synthetic(num_train=200, num_test=40), num_train=50, num_test=10)
        >>> np.bincount(small.y_train).tolist()
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    """
    rng = np.random.default_rng(seed)
    picked = {}
    for split, n in (("train", num_train), ("test", num_test)):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if n is None:
            picked[split] = (x, y)
            continue
        name = f"num_{split}"
        check_integer(n, name, minimum=1)
        if n > len(y):
            raise ValueError(
                f"{name} must be at most the {len(y)} {split} examples available. "
                f"Received: {name}={n}"
            )
        index = _balanced_indices(y, n, rng)
        picked[split] = (take(x, index), y[index])
    return CifarData(
        *picked["train"],
        *picked["test"],
        data.class_names,
        f"{data.source} (subset {len(picked['train'][1])}/{len(picked['test'][1])})",
    )
