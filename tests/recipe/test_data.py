"""Data sources: image folder (and its cache), synthetic data, tfds offline, helpers."""

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_resnet.recipe import data
from keras_resnet.recipe.data import (
    CifarData,
    DataSourceError,
    load_cifar10,
    load_image_folder,
    load_tfds,
    make_synthetic,
    shuffle_once,
    subset,
)

CLASSES = ("cat", "dog", "frog")
REPO_ROOT = Path(__file__).resolve().parents[2]
CIFAR10_JPEG_DIR = Path(
    os.environ.get("CIFAR10_JPEG_DIR", REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg")
)


def colour(label: int, index: int) -> tuple[int, int, int]:
    """A pixel value that encodes the class and the image index (checked after decoding)."""
    return (40 + 80 * label, 10 * index, 200)


def write_image(path: Path, rgb=(0, 0, 0), size=(32, 32), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, rgb)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt)
    return path


def make_folder(root: Path, ext="png", train_per_class=4, test_per_class=2) -> Path:
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(CLASSES):
            for i in range(n):
                write_image(root / split / name / f"{i:04d}.{ext}", colour(label, i))
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "images")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def decode_calls(monkeypatch):
    """Counts calls of the image decoder."""
    calls = []
    real = data._decode_image

    def counting(path, *args):
        calls.append(path)
        return real(path, *args)

    monkeypatch.setattr(data, "_decode_image", counting)
    return calls


def forbid_decoding(monkeypatch):
    def fail(path, *args):
        raise AssertionError(f"decoded {path} although the cache is valid")

    monkeypatch.setattr(data, "_decode_image", fail)


def cache_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.iterdir()) if cache_dir.exists() else []


# --------------------------------------------------------------------------- image folder


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_folder_shapes_labels_and_classes(tmp_path, cache_dir, ext):
    root = make_folder(tmp_path / "images", ext=ext)
    d = load_image_folder(root, cache_dir=cache_dir, progress=False)
    assert d.x_train.shape == (12, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (6, 32, 32, 3) and d.x_test.dtype == np.uint8
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert d.class_names == CLASSES
    assert d.source == f"folder:{root.resolve()}"
    np.testing.assert_array_equal(d.y_train, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(d.y_test, np.repeat([0, 1, 2], 2))
    # Pixels match the file each label came from (JPEG is lossy: approximately).
    expected = np.array([colour(lab, i) for lab in range(3) for i in range(4)], dtype=float)
    tolerance = 0 if ext == "png" else 6
    np.testing.assert_allclose(d.x_train.mean(axis=(1, 2)), expected, atol=tolerance)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_image_folder_converts_other_modes_to_rgb(tmp_path, cache_dir, mode):
    root = make_folder(tmp_path / "images")
    write_image(root / "train" / "cat" / "0000.png", (102, 102, 102), mode=mode)
    d = load_image_folder(root, cache_dir=cache_dir, progress=False)
    assert d.x_train.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(d.x_train[0], np.full((32, 32, 3), 102, dtype=np.uint8))


def test_image_folder_ignores_hidden_files(folder, cache_dir):
    (folder / "train" / ".DS_Store").write_bytes(b"\x00junk")
    (folder / "train" / "cat" / ".hidden.png").write_bytes(b"not an image")
    d = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    assert len(d.y_train) == 12


def test_image_folder_progress_goes_to_stderr(folder, tmp_path, capsys):
    load_image_folder(folder, cache_dir=tmp_path / "cache1", progress=True)
    captured = capsys.readouterr()
    assert "Decoding train images" in captured.err and "12/12 (100%" in captured.err
    assert captured.out == ""
    load_image_folder(folder, cache_dir=tmp_path / "cache2", progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- cache


def test_second_load_uses_the_cache(folder, cache_dir, monkeypatch):
    first = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    (cache_file,) = cache_files(cache_dir)
    assert cache_file.suffix == ".npz"
    forbid_decoding(monkeypatch)
    second = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.class_names == first.class_names and second.source == first.source


def test_default_cache_dir_comes_from_the_environment(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_RESNET_CACHE", str(tmp_path / "env-cache"))
    assert data.default_cache_dir() == tmp_path / "env-cache"
    load_image_folder(folder, progress=False)
    assert len(cache_files(tmp_path / "env-cache")) == 1
    monkeypatch.delenv("KERAS_RESNET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "keras_resnet"


def test_cache_is_rebuilt_when_a_file_is_added(folder, cache_dir, decode_calls):
    load_image_folder(folder, cache_dir=cache_dir, progress=False)
    assert len(decode_calls) == 18
    write_image(folder / "train" / "dog" / "0099.png", colour(1, 9))
    d = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    assert len(decode_calls) == 18 + 19
    assert len(d.y_train) == 13 and np.bincount(d.y_train).tolist() == [4, 5, 4]
    assert len(cache_files(cache_dir)) == 1  # the stale cache was removed


def test_cache_is_rebuilt_when_a_file_changes(folder, cache_dir, decode_calls):
    load_image_folder(folder, cache_dir=cache_dir, progress=False)
    path = write_image(folder / "test" / "frog" / "0001.png", (1, 2, 3))
    later = time.time() + 10
    os.utime(path, (later, later))
    d = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    assert len(decode_calls) == 2 * 18
    np.testing.assert_array_equal(d.x_test[-1, 0, 0], [1, 2, 3])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_is_rebuilt(folder, cache_dir, monkeypatch, damage):
    expected = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    (cache_file,) = cache_files(cache_dir)
    content = cache_file.read_bytes()
    cache_file.write_bytes(
        {"garbage": b"this is not a zip file", "truncated": content[: len(content) // 2]}.get(
            damage, b""
        )
    )
    with pytest.warns(UserWarning, match="rebuilding it"):
        d = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    np.testing.assert_array_equal(d.x_train, expected.x_train)
    forbid_decoding(monkeypatch)  # the rebuilt cache is valid again
    load_image_folder(folder, cache_dir=cache_dir, progress=False)


def test_failed_cache_write_leaves_no_file_and_still_returns_data(folder, cache_dir, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(data.np, "savez", disk_full)
    with pytest.warns(UserWarning, match="Could not write image-folder cache"):
        d = load_image_folder(folder, cache_dir=cache_dir, progress=False)
    assert len(d.y_train) == 12
    assert cache_files(cache_dir) == []  # no half-written or temp file


def test_unwritable_cache_dir_is_a_warning(folder, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="Could not write image-folder cache"):
        d = load_image_folder(folder, cache_dir=blocker / "cache", progress=False)
    assert len(d.y_test) == 6


# --------------------------------------------------------------------------- bad folders


def load_error(root, cache_dir) -> str:
    with pytest.raises(DataSourceError) as info:
        load_image_folder(root, cache_dir=cache_dir, progress=False)
    assert cache_files(cache_dir) == []
    return str(info.value)


def test_missing_root(tmp_path, cache_dir):
    root = tmp_path / "nowhere"
    msg = load_error(root, cache_dir)
    assert msg.startswith(f"Image folder not found: {root}.")
    assert "--synthetic" in msg and msg.endswith(f"Received: root={root!r}")


def test_root_is_a_file(tmp_path, cache_dir):
    root = tmp_path / "file.txt"
    root.write_text("x")
    assert load_error(str(root), cache_dir).startswith(f"Image folder {root} is not a folder.")


@pytest.mark.parametrize("split", ["train", "test"])
def test_missing_split(folder, cache_dir, split):
    for path in sorted((folder / split).rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (folder / split).rmdir()
    msg = load_error(folder, cache_dir)
    assert msg.startswith(f"Image folder {folder} has no '{split}' folder: expected {folder}/")
    assert msg.endswith(f"Received: root={folder!r}")


def test_split_without_class_folders(folder, cache_dir):
    for path in sorted((folder / "test").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    msg = load_error(folder, cache_dir)
    assert msg.startswith(f"Split folder {folder / 'test'} contains no class folders")


def test_empty_class_folder(folder, cache_dir):
    (folder / "train" / "emu").mkdir()
    msg = load_error(folder, cache_dir)
    assert msg.startswith(f"Class folder {folder / 'train' / 'emu'} contains no image files.")


def test_stray_file_in_split_folder(folder, cache_dir):
    stray = folder / "train" / "README.txt"
    stray.write_text("hello")
    assert load_error(folder, cache_dir).startswith(f"Unexpected file {stray}:")


def test_nested_folder_in_class_folder(folder, cache_dir):
    nested = folder / "test" / "dog" / "more"
    write_image(nested / "0000.png")
    assert load_error(folder, cache_dir).startswith(f"Unexpected folder {nested}:")


@pytest.mark.parametrize(
    "name, content",
    [
        ("0002.png", b"\x89PNG\r\n\x1a\n garbage"),  # PNG signature, broken body
        ("0002.jpg", b"\xff\xd8\xff\xe0 garbage"),  # JPEG signature, broken body
        ("notes.txt", b"not an image at all"),
    ],
)
def test_undecodable_file(folder, cache_dir, name, content):
    bad = folder / "train" / "dog" / name
    bad.write_bytes(content)
    msg = load_error(folder, cache_dir)
    assert msg.startswith(f"Cannot decode image file {bad}: ")
    assert msg.endswith("Replace or delete the file.")


def test_truncated_image(folder, cache_dir):
    bad = folder / "test" / "cat" / "0000.png"
    bad.write_bytes(bad.read_bytes()[:60])
    assert load_error(folder, cache_dir).startswith(f"Cannot decode image file {bad}: ")


# --------------------------------------------------------------------------- your own folders

# Four classes of mixed sizes, formats and modes: (size, format, mode) per image.
MIXED = {
    "apple": [((64, 48), "PNG", "RGB"), ((40, 40), "JPEG", "L"), ((100, 30), "WEBP", "RGBA")],
    "kiwi": [((33, 80), "BMP", "RGB"), ((64, 64), "PNG", "P"), ((50, 70), "PNG", "LA")],
    "lime": [((32, 32), "JPEG", "RGB"), ((120, 90), "WEBP", "RGB"), ((48, 48), "BMP", "L")],
    "plum": [((45, 61), "PNG", "RGBA"), ((64, 48), "JPEG", "RGB"), ((90, 40), "PNG", "L")],
}
SUFFIX = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp"}


def make_mixed_folder(root: Path) -> Path:
    for split in ("train", "test"):
        for label, (name, images) in enumerate(MIXED.items()):
            for i, (size, fmt, mode) in enumerate(images):
                rgb = (50 * label + 20, 30 + 40 * i, 200)
                write_image(root / split / name / f"{i}.{SUFFIX[fmt]}", rgb, size, mode, fmt)
    return root


def test_a_folder_of_mixed_sizes_formats_and_modes_is_resized_to_rgb(tmp_path, cache_dir):
    root = make_mixed_folder(tmp_path / "mixed")
    loaded = load_image_folder(root, cache_dir=cache_dir, progress=False, image_size=24)
    assert loaded.class_names == tuple(MIXED)
    assert loaded.x_train.shape == (12, 24, 24, 3) and loaded.x_train.dtype == np.uint8
    assert loaded.y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for k, (size, fmt, mode) in enumerate(v for images in MIXED.values() for v in images):
        label, i = divmod(k, 3)
        rgb = np.array((50 * label + 20, 30 + 40 * i, 200))
        if mode in ("L", "LA"):  # one grey level, Pillow's ITU-R 601-2 luma
            rgb = np.full(3, round(rgb @ np.array([299, 587, 114]) / 1000))
        # A plain image stays plain whatever the scaling; JPEG, WebP and a palette are lossy.
        tolerance = 10 if fmt in ("JPEG", "WEBP") or mode == "P" else 2
        np.testing.assert_allclose(
            loaded.x_train[k],
            np.broadcast_to(rgb, (24, 24, 3)),
            atol=tolerance,
            err_msg=f"{size} {fmt} {mode}",
        )


def test_the_default_size_is_32_for_32x32_images_and_128_otherwise(folder, tmp_path, cache_dir):
    assert load_image_folder(folder, cache_dir=cache_dir, progress=False).x_train.shape[1] == 32
    mixed = make_mixed_folder(tmp_path / "mixed")
    loaded = load_image_folder(mixed, cache_dir=cache_dir, progress=False)
    assert loaded.x_test.shape == (12, 128, 128, 3)
    assert data.default_image_size([]) == data.CIFAR_IMAGE_SIZE == 32
    assert data.DEFAULT_LARGE_IMAGE_SIZE == 128


def test_a_wide_image_is_scaled_by_its_shorter_side_and_centre_cropped(tmp_path):
    # 64x32: a red, a green (the middle half) and a blue band; at 16x16 the green is left.
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :16, 0] = image[:, 16:48, 1] = image[:, 48:, 2] = 255
    path = tmp_path / "wide.png"
    Image.fromarray(image).save(path)
    decoded = data._decode_image(str(path), 16)
    assert decoded.shape == (16, 16, 3)
    inner = decoded[:, 1:-1].astype(int)  # the outer columns blend with the bands (bilinear)
    assert (inner[..., 1] == 255).all() and (inner[..., [0, 2]] == 0).all()
    np.testing.assert_array_equal(data.resize_images(image[None], 16)[0], decoded)


def test_a_folder_over_the_memory_budget_streams_the_same_images(tmp_path, cache_dir, capsys):
    root = make_mixed_folder(tmp_path / "mixed")
    arrays = load_image_folder(root, cache_dir=cache_dir, progress=False, image_size=20)
    streamed = load_image_folder(
        root, cache_dir=tmp_path / "unused", image_size=20, memory_budget_mb=0
    )
    assert isinstance(streamed.x_train, data.ImageFiles) and not (tmp_path / "unused").exists()
    # 24 images of 20x20x3 bytes are 0.03 MiB, over a budget of 0.
    assert capsys.readouterr().err.strip() == (
        f"Streaming the images of {root.resolve()} from disk: decoded at 20x20 they would "
        f"take 0 MiB, over the memory budget of 0 MiB (--memory-budget-mb)"
    )
    for split in ("train", "test"):
        files = getattr(streamed, f"x_{split}")
        np.testing.assert_array_equal(files[np.arange(len(files))], getattr(arrays, f"x_{split}"))
        np.testing.assert_array_equal(
            getattr(streamed, f"y_{split}"), getattr(arrays, f"y_{split}")
        )
    # Subsets and shuffles select files without decoding them, as they select array rows.
    small, files = subset(arrays, 8, 4, seed=3), subset(streamed, 8, 4, seed=3)
    np.testing.assert_array_equal(files.x_train[np.arange(8)], small.x_train)
    x, y = shuffle_once(files.x_train, files.y_train, seed=5)
    want_x, want_y = shuffle_once(small.x_train, small.y_train, seed=5)
    np.testing.assert_array_equal(x[[7, 0, 3]], want_x[[7, 0, 3]])
    assert y.tolist() == want_y.tolist()
    channels_first = files.x_test.with_channels_first()
    assert channels_first.shape == (4, 3, 20, 20)
    np.testing.assert_array_equal(channels_first[[1]], small.x_test[[1]].transpose(0, 3, 1, 2))


def test_classes_differ_between_train_and_test(folder, cache_dir):
    write_image(folder / "test" / "emu" / "0000.png")
    msg = load_error(folder, cache_dir)
    assert msg.startswith(
        f"Train and test class folders differ in {folder}: missing from test: []; "
        f"missing from train: ['emu']."
    )


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_and_balance():
    d = make_synthetic(num_train=60, num_test=20, num_classes=4, seed=3)
    assert d.x_train.shape == (60, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (20, 32, 32, 3) and d.y_test.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == [15] * 4
    assert d.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert d.source == "synthetic"
    assert make_synthetic().x_train.shape == (512, 32, 32, 3)


def test_synthetic_is_deterministic():
    a, b, c = make_synthetic(seed=1), make_synthetic(seed=1), make_synthetic(seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_synthetic_is_learnable():
    # A nearest-class-mean classifier on the mean colour already separates the classes.
    d = make_synthetic(num_train=512, num_test=128, seed=0)
    features_train = d.x_train.mean(axis=(1, 2))
    features_test = d.x_test.mean(axis=(1, 2))
    centroids = np.stack([features_train[d.y_train == k].mean(0) for k in range(10)])
    predicted = np.argmin(((features_test[:, None] - centroids) ** 2).sum(-1), axis=1)
    assert (predicted == d.y_test).mean() > 0.6


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"num_train": 0}, "num_train=0"),
        ({"num_test": -1}, "num_test=-1"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"num_train": 2.5}, "num_train=2.5"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, received):
    with pytest.raises(ValueError, match=f"Received: {received}$"):
        make_synthetic(**kwargs)


# --------------------------------------------------------------------------- helpers


def test_shuffle_once_is_deterministic_and_keeps_pairs():
    x = np.arange(100).reshape(100, 1) * 10
    y = np.arange(100)
    x1, y1 = shuffle_once(x, y, seed=7)
    x2, y2 = shuffle_once(x, y, seed=7)
    x3, _ = shuffle_once(x, y, seed=8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(x1[:, 0], y1 * 10)
    assert not np.array_equal(x1, x) and not np.array_equal(x1, x3)
    assert sorted(y1.tolist()) == y.tolist()
    np.testing.assert_array_equal(y1, np.arange(100)[np.random.default_rng(7).permutation(100)])


def test_shuffle_once_rejects_length_mismatch():
    with pytest.raises(ValueError, match=r"Received: len\(x\)=3, len\(y\)=2$"):
        shuffle_once(np.zeros(3), np.zeros(2), seed=0)


def test_subset_is_balanced_and_seeded():
    d = make_synthetic(num_train=200, num_test=50, num_classes=10, seed=0)
    small = subset(d, num_train=40, num_test=10, seed=1)
    assert np.bincount(small.y_train, minlength=10).tolist() == [4] * 10
    assert np.bincount(small.y_test, minlength=10).tolist() == [1] * 10
    assert small.class_names == d.class_names
    assert small.source == "synthetic (subset 40/10)"
    again = subset(d, num_train=40, num_test=10, seed=1)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    other = subset(d, num_train=40, num_test=10, seed=2)
    assert not np.array_equal(small.x_train, other.x_train)
    # Uneven request: class counts differ by at most one.
    counts = np.bincount(subset(d, 25, None, seed=0).y_train, minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() == 1
    # None keeps a split whole.
    assert subset(d, None, 5, seed=0).x_train.shape == d.x_train.shape


def test_subset_rejects_too_many():
    d = make_synthetic(num_train=20, num_test=10)
    with pytest.raises(ValueError, match="Received: num_train=21$"):
        subset(d, num_train=21, num_test=5, seed=0)
    with pytest.raises(ValueError, match="Received: num_test=0$"):
        subset(d, num_train=5, num_test=0, seed=0)


def test_cifar_data_validates_and_has_short_repr():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    y = np.zeros(2, np.int64)
    d = CifarData(x, y, x, y, ["a", "b"], "test")
    assert d.class_names == ("a", "b") and d.num_classes == 2
    assert repr(d) == (
        "CifarData(train=(2, 32, 32, 3), test=(2, 32, 32, 3), classes=2, source='test')"
    )
    with pytest.raises(ValueError, match="x_train must be a uint8 array"):
        CifarData(x.astype(np.float32), y, x, y, ("a",), "test")
    with pytest.raises(ValueError, match="y_test must hold labels in"):
        CifarData(x, y, x, y + 5, ("a", "b"), "test")
    with pytest.raises(ValueError, match="Received: len\\(x_train\\)=2, len\\(y_train\\)=1"):
        CifarData(x, y[:1], x, y, ("a",), "test")


def test_load_cifar10_dispatches(folder, cache_dir, monkeypatch):
    assert load_cifar10(synthetic=True, data_dir=folder).source == "synthetic"
    d = load_cifar10(data_dir=folder, cache_dir=cache_dir, progress=False)
    assert d.source == f"folder:{folder.resolve()}"
    monkeypatch.setattr(data, "load_tfds", lambda: "tfds was called")
    assert load_cifar10() == "tfds was called"


# --------------------------------------------------------------------------- tfds


def test_load_tfds_offline_fails_fast(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    # Report offline even on a machine that is online, so nothing is downloaded.
    probes, downloads = [], []
    monkeypatch.setattr(data, "_network_available", lambda *args: probes.append(args) or False)
    make_builder = tfds.builder

    def builder_without_download(*args, **kwargs):
        builder = make_builder(*args, **kwargs)
        builder.download_and_prepare = lambda *args, **kwargs: downloads.append(args)
        return builder

    monkeypatch.setattr(tfds, "builder", builder_without_download)
    empty = tmp_path / "tfds"
    with pytest.raises(DataSourceError) as info:
        load_tfds(data_dir=empty)
    # Fast: one probe of the download host, and no download (tfds's retries) attempted.
    assert probes == [()] and downloads == []
    msg = str(info.value)
    assert msg.startswith(f"CIFAR-10 is not prepared in the TFDS data dir {empty}")
    assert "unreachable" in msg and "--data-dir DIR" in msg and "--synthetic" in msg
    assert msg.endswith(f"Received: data_dir={empty!r}")


def test_network_probe_is_one_bounded_connection_attempt(monkeypatch):
    attempts = []
    connect = socket.create_connection

    def counting_connect(address, timeout, *args, **kwargs):
        attempts.append((address, timeout))
        return connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(data.socket, "create_connection", counting_connect)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert data._network_available(("127.0.0.1", port), timeout=2) is True
    # The port is closed now: refused, and not tried again.
    assert data._network_available(("127.0.0.1", port), timeout=2) is False
    assert attempts == [(("127.0.0.1", port), 2)] * 2


def test_network_probe_does_not_wait_for_a_stalled_lookup(monkeypatch):
    # A DNS lookup that hangs is not covered by the socket timeout: the answer must come
    # while the probe is still stuck, as False.
    release, finished = threading.Event(), []

    def stalled_probe(host, port, timeout):
        release.wait(60)
        finished.append(host)
        return True

    monkeypatch.setattr(data, "_probe_tcp", stalled_probe)
    try:
        assert data._network_available(("stalled.invalid", 443), timeout=0.01) is False
        assert finished == []
    finally:
        release.set()


# --------------------------------------------------------------------------- real data


def require_real_folder() -> Path:
    if not (CIFAR10_JPEG_DIR / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {CIFAR10_JPEG_DIR} (set CIFAR10_JPEG_DIR)")
    return CIFAR10_JPEG_DIR


def test_real_folder_listing():
    # Scanning only (no decoding): about a second for the 60,000 files.
    listing = data._list_image_folder(require_real_folder(), "real")
    assert listing.class_names == data.CIFAR10_CLASSES
    assert len(listing.files["train"]) == 50_000 and len(listing.files["test"]) == 10_000


@pytest.mark.slow
def test_real_folder_loads_and_caches(tmp_path, decode_calls):
    # First load decodes 60,000 JPEGs (about 20 s on 2 cores); the second reads the cache.
    root = require_real_folder()
    d = load_image_folder(root, cache_dir=tmp_path, progress=False)
    assert len(decode_calls) == 60_000
    assert d.x_train.shape == (50_000, 32, 32, 3) and d.x_test.shape == (10_000, 32, 32, 3)
    assert d.class_names == data.CIFAR10_CLASSES
    assert np.bincount(d.y_train).tolist() == [5000] * 10
    assert np.bincount(d.y_test).tolist() == [1000] * 10
    again = load_image_folder(root, cache_dir=tmp_path, progress=False)
    assert len(decode_calls) == 60_000  # the second load decoded nothing
    np.testing.assert_array_equal(again.x_train, d.x_train)
    np.testing.assert_array_equal(again.x_test, d.x_test)
