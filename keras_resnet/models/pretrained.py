"""Published ImageNet weights: which models have them, and fetching, checking, caching them.

``ResNet18(weights="imagenet")`` looks its weights up in ``PRETRAINED`` by (model name,
tag), fetches the file with ``keras.utils.get_file`` into Keras's cache folder
(``~/.keras/models``, or ``$KERAS_HOME/models``), checks its hash, and loads it:

- torchvision's files (``resnet18``..``resnet152``, torchvision's v1.5 layout): a
  ``torch.save`` archive read without torch (``models.pth``) and mapped by name
  (``models.torchvision``). torchvision names each file after the first 8 hex digits of
  its SHA-256, which is checked; ``"imagenet"`` is its IMAGENET1K_V1, ``"imagenet_v2"``
  (ResNet-50/101/152) its IMAGENET1K_V2, trained with a longer, stronger recipe.
- keras.applications' files (``resnet50_v1``..``resnet152_v1``, ``resnet50_v2``..
  ``resnet152_v2``, its layouts layer for layer): legacy Keras HDF5 files, checked against
  keras.applications' own MD5 hashes and copied by layer name (``load_keras_applications_weights``).

A file is downloaded under a temporary name and renamed only once its hash is right, so a
download that is cut off, killed or corrupted never stays in the cache under the real
name. ``KERAS_RESNET_WEIGHTS_URL`` replaces every source's base URL, for a mirror (or a
test server) that holds the files under their published names. A machine without access
gets, within ``DOWNLOAD_TIMEOUT_S``, an error with the URL and the way to pass the file
by hand: ``weights="/path/to/resnet18-f37072fd.pth"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import socket

import keras
import numpy as np

from keras_resnet.models.specs import MODEL_SPECS
from keras_resnet.models.torchvision import load_torchvision_weights

TORCHVISION_URL = "https://download.pytorch.org/models/"
KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
WEIGHTS_URL_VARIABLE = "KERAS_RESNET_WEIGHTS_URL"
CACHE_SUBDIR = "models"
# Seconds any one network operation may take (connecting, or a read): an unreachable
# host fails in this time, while a slow but live download goes on.
DOWNLOAD_TIMEOUT_S = 20.0
PARTIAL_SUFFIX = ".partial"


class WeightsDownloadError(OSError):
    """Published weights that could not be fetched or did not verify."""


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published weights file and what it needs.

    Attributes:
        source: ``"torchvision"`` or ``"keras.applications"``.
        file_name: the published file (with the classifier).
        file_hash: torchvision: the SHA-256 prefix in its name; keras.applications: MD5.
        notop_file_name, notop_hash: keras.applications' file without the classifier
            (torchvision has one file; a model without its top ignores ``fc``).
        top1: the source's reported ImageNet-1k validation top-1 accuracy, in percent.
        preprocessing: the input convention, a mode of
            ``keras.applications.imagenet_utils.preprocess_input``: "torch" (RGB in 0-1,
            then ImageNet's mean and std), "caffe" (BGR, mean subtracted), "tf" (-1 to 1).
        eval_resize: the shorter side the source resizes to before its 224 center crop.
    """

    source: str
    file_name: str
    file_hash: str
    top1: float
    preprocessing: str
    eval_resize: int = 256
    notop_file_name: str | None = None
    notop_hash: str | None = None

    def file_for(self, include_top: bool) -> tuple[str, str]:
        """(file name, hash) of the file a model with or without its top loads.

        Example:
            >>> PRETRAINED["resnet50_v1", "imagenet"].file_for(False)[0]
            'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
        """
        if include_top or self.notop_file_name is None:
            return self.file_name, self.file_hash
        return self.notop_file_name, self.notop_hash

    def base_url(self) -> str:
        """The URL the file names are relative to (``KERAS_RESNET_WEIGHTS_URL`` if set).

        Example:
            >>> PRETRAINED["resnet18", "imagenet"].base_url()  # doctest: +SKIP
            'https://download.pytorch.org/models/'
        """
        override = os.environ.get(WEIGHTS_URL_VARIABLE)
        if override:
            return override.rstrip("/") + "/"
        return TORCHVISION_URL if self.source == "torchvision" else KERAS_APPLICATIONS_URL


def _torchvision(file_name: str, top1: float, eval_resize: int = 256) -> PretrainedWeights:
    return PretrainedWeights(
        source="torchvision",
        file_name=file_name,
        file_hash=file_name.rsplit("-", 1)[1].split(".")[0],
        top1=top1,
        preprocessing="torch",
        eval_resize=eval_resize,
    )


def _keras_applications(name: str, hashes: tuple[str, str], top1: float, mode: str):
    return PretrainedWeights(
        source="keras.applications",
        file_name=f"{name}_weights_tf_dim_ordering_tf_kernels.h5",
        file_hash=hashes[0],
        notop_file_name=f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        notop_hash=hashes[1],
        top1=top1,
        preprocessing=mode,
    )


# (model name, weights tag) -> the file. Top-1 figures are the sources' own (torchvision's
# weight metadata; keras.io's applications table), not measured here. torchvision's V2
# weights are evaluated after resizing to 232 (its V1 ones and keras.applications' to 256).
PRETRAINED = {
    ("resnet18", "imagenet"): _torchvision("resnet18-f37072fd.pth", 69.758),
    ("resnet34", "imagenet"): _torchvision("resnet34-b627a593.pth", 73.314),
    ("resnet50", "imagenet"): _torchvision("resnet50-0676ba61.pth", 76.130),
    ("resnet50", "imagenet_v2"): _torchvision("resnet50-11ad3fa6.pth", 80.858, 232),
    ("resnet101", "imagenet"): _torchvision("resnet101-63fe2227.pth", 77.374),
    ("resnet101", "imagenet_v2"): _torchvision("resnet101-cd907fc2.pth", 81.886, 232),
    ("resnet152", "imagenet"): _torchvision("resnet152-394f9c45.pth", 78.312),
    ("resnet152", "imagenet_v2"): _torchvision("resnet152-f82ba261.pth", 82.284, 232),
    ("resnet50_v1", "imagenet"): _keras_applications(
        "resnet50",
        ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
        74.9,
        "caffe",
    ),
    ("resnet101_v1", "imagenet"): _keras_applications(
        "resnet101",
        ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
        76.4,
        "caffe",
    ),
    ("resnet152_v1", "imagenet"): _keras_applications(
        "resnet152",
        ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
        76.6,
        "caffe",
    ),
    ("resnet50_v2", "imagenet"): _keras_applications(
        "resnet50v2",
        ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
        76.0,
        "tf",
    ),
    ("resnet101_v2", "imagenet"): _keras_applications(
        "resnet101v2",
        ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
        77.2,
        "tf",
    ),
    ("resnet152_v2", "imagenet"): _keras_applications(
        "resnet152v2",
        ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
        78.0,
        "tf",
    ),
}
TAGS = tuple(dict.fromkeys(tag for _, tag in PRETRAINED))


def is_tag(weights) -> bool:
    """Whether ``weights`` names published weights ("imagenet", ...) rather than a path.

    Example:
        >>> is_tag("imagenet"), is_tag("resnet20.weights.h5")
        (True, False)
    """
    return isinstance(weights, str) and weights in TAGS


def pretrained_entry(model_name: str, tag: str) -> PretrainedWeights:
    """The published weights of a model, or a ValueError listing the models that have them.

    Example:
        >>> pretrained_entry("resnet50", "imagenet_v2").top1
        80.858
    """
    if tag not in TAGS:
        raise ValueError(
            f"Unknown weights tag. Available: {', '.join(TAGS)}. Received: weights={tag!r}"
        )
    entry = PRETRAINED.get((model_name, tag))
    if entry is None:
        available = ", ".join(sorted({m for m, t in PRETRAINED if t == tag}, key=_table_order))
        raise ValueError(
            f"No published {tag!r} weights for {model_name!r}. Models with them: {available}. "
            f"Pass weights=None, or the path of a weights file. Received: weights={tag!r}"
        )
    return entry


def _table_order(name: str) -> int:
    return list(MODEL_SPECS).index(name)


def _hash_of(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_matches(path: str, expected: str) -> bool:
    """Whether the file's hash is ``expected``: an MD5 (32 hex digits), a SHA-256, or a
    SHA-256 prefix (torchvision's 8 digits).

    Example:
        >>> file_matches("resnet18-f37072fd.pth", "f37072fd")  # doctest: +SKIP
        True
    """
    algorithm = "md5" if len(expected) == 32 else "sha256"
    return _hash_of(path, algorithm).startswith(expected.lower())


@contextlib.contextmanager
def _network_timeout(seconds: float):
    """Sockets opened inside time out after ``seconds`` (get_file's urlopen has none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def cache_folder(cache_dir: str | None = None) -> str:
    """The folder get_file keeps the files in: ``<cache_dir or Keras home>/models``.

    Example:
        >>> cache_folder("/data/keras")
        '/data/keras/models'
    """
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return os.path.join(os.path.expanduser(base), CACHE_SUBDIR)


def fetch(entry: PretrainedWeights, include_top: bool = True, cache_dir: str | None = None):
    """The path of a verified copy of the file, downloading it if the cache has none.

    A cached file is checked again (hashing 45-230 MB takes well under a second); one
    that fails is deleted and downloaded again.

    Raises:
        WeightsDownloadError: no connection, an HTTP error, a cut-off transfer or a
            hash mismatch; the message has the URL and how to pass the file by hand.

    Example:
        >>> fetch(PRETRAINED["resnet18", "imagenet"])  # doctest: +SKIP
        '/root/.keras/models/resnet18-f37072fd.pth'
    """
    file_name, expected = entry.file_for(include_top)
    folder = cache_folder(cache_dir)
    target = os.path.join(folder, file_name)
    if os.path.isfile(target):
        if file_matches(target, expected):
            return target
        os.remove(target)
    url = entry.base_url() + file_name
    by_hand = (
        f"Without access, download {url} elsewhere and pass its path "
        f"(weights='/path/to/{file_name}'), or place it at {target}."
    )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise WeightsDownloadError(
            f"The weights cache {folder} cannot be created ({error}): set KERAS_HOME to a "
            f"writable folder, or pass the file's path. {by_hand}"
        ) from error
    partial = target + PARTIAL_SUFFIX
    try:
        with _network_timeout(DOWNLOAD_TIMEOUT_S):
            partial = keras.utils.get_file(
                fname=os.path.basename(partial),
                origin=url,
                cache_dir=os.path.dirname(folder),
                cache_subdir=CACHE_SUBDIR,
                force_download=True,
            )
    except Exception as error:  # get_file raises a bare Exception for URL errors
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
        raise WeightsDownloadError(
            f"Could not download the {entry.source} weights {file_name} from {url}: {error}. "
            f"{by_hand}"
        ) from error
    if not file_matches(partial, expected):
        os.remove(partial)
        raise WeightsDownloadError(
            f"The downloaded {file_name} does not match its published hash {expected} "
            f"(a corrupted or cut-off transfer, or a wrong file at {url}); it was deleted. "
            f"Try again, or: {by_hand}"
        )
    os.replace(partial, target)
    return target


def read_keras_applications_file(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """A legacy Keras HDF5 weights file (keras.applications' format) as arrays by layer
    name, each layer's in its stored order (for batch norm: gamma, beta, mean, variance).

    Example:
        >>> read_keras_applications_file("resnet50v2_weights_tf_dim_ordering_tf_kernels.h5")[
        ...     "conv1_conv"][0].shape  # doctest: +SKIP
        (7, 7, 3, 64)
    """
    import h5py

    from keras_resnet.models.weights import WeightsFileError

    path = os.fspath(path)
    if not h5py.is_hdf5(path):
        raise WeightsFileError(
            f"{path} is not a Keras HDF5 weights file. Received: weights={path!r}"
        )
    with h5py.File(path, "r") as store:
        group = store["model_weights"] if "model_weights" in store else store
        if "layer_names" not in group.attrs:
            raise WeightsFileError(
                f"{path} is an HDF5 file but not a legacy Keras weights file (it has no "
                f"layer_names): Keras 3 files end in .weights.h5. Received: weights={path!r}"
            )
        layers = {}
        for raw_name in group.attrs["layer_names"]:
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            weight_names = group[name].attrs.get("weight_names", [])
            if len(weight_names):
                layers[name] = [
                    np.asarray(group[name][w.decode() if isinstance(w, bytes) else w])
                    for w in weight_names
                ]
    return layers


def load_keras_applications_weights(model: keras.Model, path: str | os.PathLike) -> keras.Model:
    """Copy a keras.applications weights file into a model of the same layout, by layer
    name, after checking every layer and shape (nothing is assigned unless all fit).

    The ``resnet50_v1``..``resnet152_v2`` rows reproduce keras.applications' ResNet50..
    ResNet152V2 layer for layer; a model without its top takes the ``_notop`` file, or
    the full one with the classifier ignored.

    Example:
        >>> model = keras_resnet.get_model("resnet50_v2")
        >>> load_keras_applications_weights(
        ...     model, "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5")  # doctest: +SKIP
    """
    from keras_resnet.models.weights import WeightsFileError

    path = os.fspath(path)
    stored = read_keras_applications_file(path)
    layers = [layer for layer in model.layers if layer.weights]
    names = {layer.name for layer in layers}
    if "predictions" not in names:
        stored.pop("predictions", None)
    plan = []
    for layer in layers:
        arrays = stored.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if arrays is None or [a.shape for a in arrays] != shapes:
            found = "missing" if arrays is None else f"shapes {[a.shape for a in arrays]}"
            hint = (
                " Build it with num_classes matching the file, or include_top=False."
                if layer.name == "predictions" and arrays is not None
                else ""
            )
            raise WeightsFileError(
                f"{path} does not fit {model.name}: layer {layer.name} is {found} in the "
                f"file, {shapes} in the model. keras.applications' files fit the "
                f"resnet50_v1..resnet152_v1 and resnet50_v2..resnet152_v2 rows.{hint} "
                f"Received: weights={path!r}"
            )
        plan.extend(zip(layer.weights, arrays, strict=True))
    extra = sorted(set(stored) - names)
    if extra:
        raise WeightsFileError(
            f"{path} does not fit {model.name}: the file's layer {extra[0]} is not in the "
            f"model ({len(extra)} in all). Received: weights={path!r}"
        )
    for variable, array in plan:
        variable.assign(array.astype(keras.backend.standardize_dtype(variable.dtype)))
    return model


def load_pretrained(
    model: keras.Model, model_name: str, tag: str, include_top: bool, cache_dir=None
) -> keras.Model:
    """Fetch (or find in the cache) and load a model's published weights.

    Example:
        >>> model = keras_resnet.ResNet18()
        >>> load_pretrained(model, "resnet18", "imagenet", include_top=True)  # doctest: +SKIP
    """
    entry = pretrained_entry(model_name, tag)
    path = fetch(entry, include_top, cache_dir)
    if entry.source == "torchvision":
        return load_torchvision_weights(model, path)
    return load_keras_applications_weights(model, path)
