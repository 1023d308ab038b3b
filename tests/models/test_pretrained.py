"""weights="imagenet": the table of published files, their download from a real HTTP server
on 127.0.0.1 (serving generated files under the published names), the cache, every way a
download fails, and keras.applications' weight files loaded layer for layer."""

import dataclasses
import hashlib
import http.server
import socket
import threading
import time

import h5py
import keras
import numpy as np
import pytest
import torch
from conftest import KERAS_APPLICATIONS
from save_reference import randomize_batch_norm_statistics

import keras_resnet
from keras_resnet import MODEL_SPECS, get_model
from keras_resnet.models import pretrained
from keras_resnet.models.pretrained import PRETRAINED, WeightsDownloadError
from keras_resnet.models.weights import WeightsFileError

SIZE = 64  # the weights do not depend on the input size; the forward pass is cheaper
FAST = ("resnet50_v1", "resnet50_v2")


def x_batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(2, SIZE, SIZE, 3)).astype("float32")


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def assert_same_weights(model, source):
    for mine, theirs in zip(model.weights, source.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), err_msg=mine.path
        )


# --------------------------------------------------------------------------- a file server


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.lstrip("/")
        self.server.requests.append(name)
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if name in self.server.cut_off:
            self.wfile.write(data[: len(data) // 2])  # then the connection closes
            self.close_connection = True
        else:
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path):
    """A file server on a free port of 127.0.0.1, the weights URL pointed at it, and an
    empty Keras home: (server, cache folder). ``server.files`` maps a name to its bytes."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.cut_off = {}, [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(pretrained.WEIGHTS_URL_VARIABLE, f"http://127.0.0.1:{httpd.server_port}")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    yield httpd, tmp_path / "keras" / "models"
    httpd.shutdown()
    httpd.server_close()


def _serve(monkeypatch, httpd, key, data: bytes, notop: bytes | None = None):
    """Serve ``data`` under the entry's published name, the table's hash set to match."""
    entry = PRETRAINED[key]
    hash_of = (
        (lambda b: hashlib.sha256(b).hexdigest()[:8])
        if entry.source == "torchvision"
        else (lambda b: hashlib.md5(b).hexdigest())
    )
    changes = {"file_hash": hash_of(data)}
    httpd.files[entry.file_name] = data
    if notop is not None:
        changes["notop_hash"] = hash_of(notop)
        httpd.files[entry.notop_file_name] = notop
    monkeypatch.setitem(PRETRAINED, key, dataclasses.replace(entry, **changes))
    return entry


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A random ResNet-18 and its weights as torchvision publishes them (torch.save)."""
    keras.utils.set_random_seed(3)
    source = get_model("resnet18", input_shape=(SIZE, SIZE, 3), stem="imagenet")
    randomize_batch_norm_statistics(source, seed=3)
    state_dict = keras_resnet.torchvision_state_dict(source)
    path = tmp_path_factory.mktemp("published") / "resnet18.pth"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}, path)
    return path.read_bytes(), source


def _resnet18_imagenet(**kwargs):
    return keras_resnet.ResNet18(weights="imagenet", input_shape=(SIZE, SIZE, 3), **kwargs)


# --------------------------------------------------------------------------- the table


def test_the_table_names_rows_and_the_sources_published_files():
    assert {name for name, _ in PRETRAINED} <= set(MODEL_SPECS)
    for (name, _), entry in PRETRAINED.items():
        if entry.source == "torchvision":
            assert entry.file_name.startswith(f"{name}-") and entry.file_name.endswith(".pth")
            assert entry.file_name == f"{name}-{entry.file_hash}.pth"
            assert entry.preprocessing == "torch"
        else:
            assert entry.source == "keras.applications"
            assert entry.preprocessing == ("caffe" if name.endswith("_v1") else "tf")
    # keras.applications' own file hashes, as the installed Keras has them.
    from keras.src.applications import resnet

    assert resnet.BASE_WEIGHTS_PATH == pretrained.KERAS_APPLICATIONS_URL
    for name in KERAS_APPLICATIONS:
        entry = PRETRAINED[name, "imagenet"]
        keras_name = entry.file_name.split("_weights")[0]
        assert (entry.file_hash, entry.notop_hash) == resnet.WEIGHTS_HASHES[keras_name]


def test_a_model_without_published_weights_lists_those_that_have_them():
    with pytest.raises(ValueError) as error:
        keras_resnet.ResNet20(weights="imagenet")
    assert str(error.value) == (
        "No published 'imagenet' weights for 'resnet20'. Models with them: resnet18, "
        "resnet34, resnet50, resnet101, resnet152, resnet50_v1, resnet101_v1, resnet152_v1, "
        "resnet50_v2, resnet101_v2, resnet152_v2. Pass weights=None, or the path of a weights "
        "file. Received: weights='imagenet'"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"num_classes": 10},
            "weights='imagenet' with include_top=True needs num_classes=1000 (ImageNet's "
            "classes); for another number of classes, build with include_top=False and add "
            "your own classifier. Received: num_classes=10",
        ),
        (
            {"input_shape": (64, 64, 1)},
            "weights='imagenet' needs 3 input channels (RGB). Received: input_shape=(64, 64, 1)",
        ),
        (
            {"stem": "cifar"},
            "weights='imagenet' fits resnet18 as torchvision built it: the ImageNet stem and "
            "the 'projection' shortcuts; leave `stem` and `shortcut` unset. "
            "Received: stem='cifar', shortcut='projection'",
        ),
        (
            {"weights": "imagenet1k"},
            "`weights` must be None, one of 'imagenet', 'imagenet_v2' (published weights), or "
            "the path of an existing weights file (.weights.h5, .keras, a torchvision .pth, or "
            "a keras.applications .h5). Received: weights='imagenet1k'",
        ),
    ],
)
def test_what_published_weights_cannot_fill_is_refused_before_any_download(kwargs, message):
    kwargs = {"weights": "imagenet", **kwargs}
    with pytest.raises(ValueError) as error:
        keras_resnet.ResNet18(**kwargs)
    assert str(error.value) == message


def test_imagenet_v2_exists_for_resnet50_101_152_only():
    assert {name for name, tag in PRETRAINED if tag == "imagenet_v2"} == {
        "resnet50",
        "resnet101",
        "resnet152",
    }
    with pytest.raises(ValueError, match="No published 'imagenet_v2' weights for 'resnet18'"):
        keras_resnet.ResNet18(weights="imagenet_v2")


# --------------------------------------------------------------------------- downloads


def test_a_download_is_verified_cached_and_reused(server, monkeypatch, resnet18_file):
    httpd, cache = server
    data, source = resnet18_file
    entry = _serve(monkeypatch, httpd, ("resnet18", "imagenet"), data)
    model = _resnet18_imagenet()
    assert httpd.requests == [entry.file_name]
    assert sorted(p.name for p in cache.iterdir()) == [entry.file_name]
    assert (cache / entry.file_name).read_bytes() == data
    assert_same_weights(model, source)
    again = _resnet18_imagenet()  # from the cache: no second request
    assert httpd.requests == [entry.file_name]
    assert_same_weights(again, source)


def test_without_the_top_the_classifier_is_ignored(server, monkeypatch, resnet18_file):
    httpd, _ = server
    data, source = resnet18_file
    _serve(monkeypatch, httpd, ("resnet18", "imagenet"), data)
    features = _resnet18_imagenet(include_top=False, pooling="avg")
    assert features.output.shape == (None, 512)
    reference = keras.Model(source.input, source.get_layer("avg_pool").output)
    x = x_batch()
    np.testing.assert_allclose(predict(features, x), predict(reference, x), rtol=1e-5, atol=1e-6)
    logits = _resnet18_imagenet(classifier_activation=None)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(predict(logits, x)))
    np.testing.assert_allclose(probabilities, predict(source, x), rtol=1e-4, atol=1e-6)


def test_a_hash_mismatch_is_refused_and_the_file_removed(server, monkeypatch, resnet18_file):
    httpd, cache = server
    data, _ = resnet18_file
    entry = _serve(monkeypatch, httpd, ("resnet18", "imagenet"), data)
    httpd.files[entry.file_name] = data[:-1] + bytes([data[-1] ^ 1])  # one bit flipped
    with pytest.raises(WeightsDownloadError) as error:
        _resnet18_imagenet()
    url = f"http://127.0.0.1:{httpd.server_port}/{entry.file_name}"
    expected_hash = PRETRAINED["resnet18", "imagenet"].file_hash
    assert str(error.value) == (
        f"The downloaded {entry.file_name} does not match its published hash {expected_hash} "
        f"(a corrupted or cut-off transfer, or a wrong file at {url}); it was deleted. Try "
        f"again, or: Without access, download {url} elsewhere and pass its path "
        f"(weights='/path/to/{entry.file_name}'), or place it at {cache / entry.file_name}."
    )
    assert list(cache.iterdir()) == []


def test_a_download_cut_off_mid_file_leaves_nothing_cached(server, monkeypatch, resnet18_file):
    httpd, cache = server
    data, source = resnet18_file
    entry = _serve(monkeypatch, httpd, ("resnet18", "imagenet"), data)
    httpd.cut_off.add(entry.file_name)
    with pytest.raises(WeightsDownloadError, match="retrieval incomplete: got only"):
        _resnet18_imagenet()  # get_file sees the short transfer (the hash check would too)
    assert list(cache.iterdir()) == []
    httpd.cut_off.clear()  # the next try downloads the whole file
    assert_same_weights(_resnet18_imagenet(), source)
    assert httpd.requests == [entry.file_name, entry.file_name]


def test_a_damaged_cached_file_is_downloaded_again(server, monkeypatch, resnet18_file):
    httpd, cache = server
    data, source = resnet18_file
    entry = _serve(monkeypatch, httpd, ("resnet18", "imagenet"), data)
    cache.mkdir(parents=True)
    (cache / entry.file_name).write_bytes(data[:1000])
    assert_same_weights(_resnet18_imagenet(), source)
    assert httpd.requests == [entry.file_name]
    assert (cache / entry.file_name).read_bytes() == data


def test_no_server_fails_fast_with_the_url_and_the_way_by_hand(monkeypatch, tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(pretrained.WEIGHTS_URL_VARIABLE, f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(WeightsDownloadError) as error:
        _resnet18_imagenet()
    assert time.monotonic() - start < 10
    url = f"http://127.0.0.1:{port}/resnet18-f37072fd.pth"
    message = str(error.value)
    assert message.startswith(
        f"Could not download the torchvision weights resnet18-f37072fd.pth from {url}: "
    )
    assert message.endswith(
        f"Without access, download {url} elsewhere and pass its path "
        f"(weights='/path/to/resnet18-f37072fd.pth'), or place it at "
        f"{tmp_path / 'models' / 'resnet18-f37072fd.pth'}."
    )
    assert list((tmp_path / "models").iterdir()) == []


def test_a_file_placed_by_hand_in_the_cache_needs_no_server(monkeypatch, tmp_path, resnet18_file):
    data, source = resnet18_file
    key = ("resnet18", "imagenet")
    entry = PRETRAINED[key]
    monkeypatch.setitem(
        PRETRAINED, key, dataclasses.replace(entry, file_hash=hashlib.sha256(data).hexdigest()[:8])
    )
    monkeypatch.setenv(pretrained.WEIGHTS_URL_VARIABLE, "http://127.0.0.1:9/")  # discard port
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / entry.file_name).write_bytes(data)
    assert_same_weights(_resnet18_imagenet(), source)


# --------------------------------------------------------------------------- keras.applications


def write_keras_applications_file(model, path):
    """The model's weights in keras.applications' published format: a legacy Keras HDF5
    file (layer_names; per layer its weight_names and one dataset each, "kernel:0" ...)."""
    with h5py.File(path, "w") as store:
        layers = list(model.layers)
        store.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        store.attrs["backend"] = b"tensorflow"
        store.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            group = store.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, variable in zip(names, layer.weights, strict=True):
                group.create_dataset(name.decode(), data=keras.ops.convert_to_numpy(variable))


def randomized_reference(name, include_top=True, seed=0):
    """keras.applications' model (weights=None): kernels as initialized, every bias,
    batch-norm parameter and statistic random, so each is checked to be copied."""
    keras.utils.set_random_seed(seed)
    reference = getattr(keras.applications, KERAS_APPLICATIONS[name])(
        weights=None,
        include_top=include_top,
        input_shape=(SIZE, SIZE, 3),
        classifier_activation=None,
    )
    rng = np.random.default_rng(seed)
    for variable in reference.weights:
        if "kernel" in variable.path:
            continue  # Keras's seeded initialization: random, and keeps activations in range
        if "moving_variance" in variable.path or "gamma" in variable.path:
            value = rng.uniform(0.5, 1.5, variable.shape)
        else:  # biases, beta, moving_mean
            value = rng.normal(0.0, 0.1, variable.shape)
        variable.assign(value.astype("float32"))
    return reference


@pytest.mark.parametrize(
    "name",
    [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in KERAS_APPLICATIONS],
)
def test_a_keras_applications_file_loads_with_its_predictions(name, tmp_path):
    reference = randomized_reference(name)
    path = tmp_path / f"{name}.h5"
    write_keras_applications_file(reference, path)
    # The file is in keras.applications' format: Keras's own legacy loader reads it.
    check = getattr(keras.applications, KERAS_APPLICATIONS[name])(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    check.load_weights(path)
    model = get_model(
        name,
        weights=str(path),
        input_shape=(SIZE, SIZE, 3),
        stem="imagenet",
        classifier_activation=None,
    )
    x = x_batch()
    expected = predict(reference, x)
    np.testing.assert_allclose(predict(check, x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict(model, x), expected, rtol=1e-4, atol=1e-4)


def test_keras_applications_imagenet_downloads_the_notop_file(server, monkeypatch, tmp_path):
    httpd, cache = server
    name = "resnet50_v2"
    full, notop = randomized_reference(name), randomized_reference(name, include_top=False)
    for model, file in ((full, "full.h5"), (notop, "notop.h5")):
        write_keras_applications_file(model, tmp_path / file)
    entry = _serve(
        monkeypatch,
        httpd,
        (name, "imagenet"),
        (tmp_path / "full.h5").read_bytes(),
        (tmp_path / "notop.h5").read_bytes(),
    )
    features = get_model(name, weights="imagenet", include_top=False, input_shape=(SIZE, SIZE, 3))
    assert httpd.requests == [entry.notop_file_name]
    x = x_batch()
    np.testing.assert_allclose(predict(features, x), predict(notop, x), rtol=1e-4, atol=1e-4)
    classifier = get_model(
        name, weights="imagenet", input_shape=(SIZE, SIZE, 3), classifier_activation=None
    )
    assert httpd.requests == [entry.notop_file_name, entry.file_name]
    np.testing.assert_allclose(predict(classifier, x), predict(full, x), rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [entry.file_name, entry.notop_file_name]
    )


def test_a_keras_applications_file_of_another_depth_names_the_first_layer(tmp_path):
    path = tmp_path / "resnet50.h5"
    write_keras_applications_file(randomized_reference("resnet50_v1"), path)
    with pytest.raises(WeightsFileError) as error:
        get_model("resnet101_v1", weights=str(path), input_shape=(SIZE, SIZE, 3), stem="imagenet")
    assert str(error.value) == (
        f"{path} does not fit resnet101_v1: layer conv4_block7_1_conv is missing in the file, "
        "[(1, 1, 1024, 256), (256,)] in the model. keras.applications' files fit the "
        "resnet50_v1..resnet152_v1 and resnet50_v2..resnet152_v2 rows. "
        f"Received: weights='{path}'"
    )
