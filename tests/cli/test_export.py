"""keras-resnet export: each format from each backend Keras supports it on, run with the
format's own runtime and compared with the .keras model to 1e-4 on real-looking images."""

import importlib.util

import keras
import numpy as np
import pytest
from command_fixtures import images, make_model, write_run_folder

from keras_resnet import cli
from keras_resnet.cli import export

BACKEND = keras.backend.backend()
SUFFIX = {"saved_model": "", "onnx": ".onnx", "litert": ".tflite"}
TOLERANCE = 1e-4


def run_with_runtime(path, format, x):
    """The artifact's output from its own runtime, independently of the command's code."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (spec,) = session.get_inputs()
        assert spec.type == "tensor(float)"
        return session.run(None, {spec.name: x})[0]
    import tensorflow as tf

    if format == "saved_model":
        loaded = tf.saved_model.load(str(path))
        return loaded.serve(tf.constant(x)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.float32
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def available(format):
    return BACKEND in export.SUPPORTED[format] and all(
        importlib.util.find_spec(module) for module in export.NEEDS[(format, BACKEND)]
    )


def formats():
    # jax2onnx takes over a minute for ResNet-20 here; ONNX from tensorflow and torch, and
    # the jax SavedModel (the same serving model), are the quick checks.
    slow = {("onnx", "jax")}
    return [
        pytest.param(f, marks=pytest.mark.slow) if (f, BACKEND) in slow else f
        for f in sorted(export.FORMATS)
    ]


@pytest.mark.parametrize("format", formats())
def test_export_round_trip_matches_the_keras_model(format, run_model, tmp_path, capsys):
    path, model = run_model
    output = tmp_path / f"artifact{SUFFIX[format]}"
    argv = ["export", path, "--format", format, "--output", str(output)]
    if BACKEND not in export.SUPPORTED[format]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"keras-resnet export: error: cannot export {format} from the {BACKEND} backend: "
            + export.UNSUPPORTED[(format, BACKEND)]
        )
        assert not output.exists()
        return
    if not available(format):
        pytest.skip(f"the export extra is not installed for {format} on {BACKEND}")
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"{format} from {BACKEND}: max |artifact - keras| = " in out
    # Raw 0-255 images, as best.keras takes them; other images than the command compared on.
    x = images(8, seed=5).astype("float32")
    expected = model.predict(x, verbose=0)
    assert expected.max() < 0.99  # not one-hot: the comparison says something
    got = run_with_runtime(output, format, x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    # Equal to predict (no augmentation there): the artifact neither crops nor flips.
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def cheapest_format():
    return {"tensorflow": "litert", "jax": "saved_model", "torch": "onnx"}[BACKEND]


# An export: test_serving_model_is_float32_without_augmentation is the quick check.
@pytest.mark.slow
def test_a_bf16_model_exports_in_float32(tmp_path, capsys):
    format = cheapest_format()
    if not available(format):
        pytest.skip(f"the export extra is not installed for {format} on {BACKEND}")
    model = make_model("bf16")
    assert model.get_layer(index=-1).get_layer("predictions").dtype_policy.name == "float32"
    path = write_run_folder(tmp_path / "run", model)
    output = tmp_path / f"artifact{SUFFIX[format]}"
    assert cli.main(["export", path, "--format", format, "--output", str(output)]) == 0
    assert "the model computes in mixed_bfloat16; the artifact is float32" in (
        capsys.readouterr().out
    )
    x = images(8, seed=6).astype("float32")
    # The same weights in float32 (a model built in float32 and given them) is the reference.
    reference = make_model("fp32")
    reference.set_weights(model.get_weights())
    got = run_with_runtime(output, format, x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference.predict(x, verbose=0), atol=TOLERANCE, rtol=0)


def test_a_mismatch_fails_and_writes_nothing(run_model, tmp_path, monkeypatch, capsys):
    # A stand-in exporter and runtime: the artifact is off by 1e-3.
    monkeypatch.setattr(export, "check_supported", lambda format, backend: None)
    monkeypatch.setattr(export, "export_model", lambda served, path, fmt: path.write_text("x"))
    monkeypatch.setattr(
        export, "run_artifact", lambda path, fmt, x: run_model[1].predict(x, verbose=0) + 1e-3
    )
    output = tmp_path / "m.onnx"
    assert cli.main(["export", run_model[0], "--format", "onnx", "--output", str(output)]) == 1
    assert capsys.readouterr().err == (
        "error: the artifact differs from the model by more than 0.0001\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_serving_model_is_float32_without_augmentation(run_model):
    served = export.serving_model(make_model("bf16"))
    layers = served.get_layer(index=-1).layers
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}
    names = {type(layer).__name__ for layer in layers}
    assert {"RandomPadCrop", "RandomFlip", "Normalization"}.isdisjoint(names)
    x = images(4).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(served(x)),
        run_model[1].predict(x, verbose=0),
        atol=1e-5,
    )


def test_parity_images_from_a_folder_spread_over_it(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for k in range(2):
            folder = tmp_path / split / f"c{k}"
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((32, 32, 3), 40 * k + i, np.uint8)).save(
                    folder / f"{i}.png"
                )
    x = export.parity_images((32, 32), 2, data_dir=tmp_path)
    assert [int(image[0, 0, 0]) for image in x] == [0, 42]  # the first and the last
