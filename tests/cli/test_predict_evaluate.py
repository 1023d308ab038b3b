"""keras-resnet predict on generated image files and evaluate on a generated image folder,
checked against the model's own predictions."""

import re

import numpy as np
import pytest
from command_fixtures import CLASSES, images

from keras_resnet import cli
from keras_resnet.cli import _common


def save_images(folder, x, names):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, name in zip(x, names, strict=True):
        Image.fromarray(image).save(folder / name)
        paths.append(str(folder / name))
    return paths


def printed_top_k(out: str) -> dict[str, list[tuple[str, float]]]:
    rows, current = {}, None
    for line in out.splitlines():
        match = re.fullmatch(r"\s+\d+\. (\S+)\s+([0-9.]+)", line)
        if match:
            rows[current].append((match[1], float(match[2])))
        else:
            current = line
            rows[current] = []
    return rows


@pytest.mark.parametrize("flip", [False, True], ids=["plain", "flip_average"])
def test_predict_prints_the_top_classes_with_their_probabilities(flip, run_model, tmp_path, capsys):
    path, model = run_model
    x = images(3, seed=2)
    files = save_images(tmp_path, x, ["a.png", "b.jpg", "c.png"])
    argv = ["predict", path, *files, "--top-k", "3"] + (["--flip-average"] if flip else [])
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    # The JPEG is lossy: the reference reads the files back as the command does.
    decoded = np.stack([_common.read_image(f, (32, 32))[0] for f in files])
    expected = model.predict(decoded.astype("float32"), verbose=0)
    if flip:
        expected = (expected + model.predict(decoded[:, :, ::-1].astype("float32"), verbose=0)) / 2
    rows = printed_top_k(captured.out)
    assert list(rows) == files
    for file, probabilities in zip(files, expected, strict=True):
        order = np.argsort(-probabilities)[:3]
        assert [name for name, _ in rows[file]] == [CLASSES[i] for i in order]
        np.testing.assert_allclose([p for _, p in rows[file]], probabilities[order], atol=1e-4)


def test_predict_resizes_another_size_with_a_note(run_model, tmp_path, capsys):
    (file,) = save_images(tmp_path, images(1, size=(48, 40)), ["big.png"])
    assert cli.main(["predict", run_model[0], file, "--top-k", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"note: {file} is 40x48; resized to 32x32, the model's input size\n"
    assert len(printed_top_k(captured.out)[file]) == 1


def test_class_names_without_test_metrics_come_from_the_training_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "data" / "train" / "b").mkdir(parents=True)
    (tmp_path / "data" / "train" / "a").mkdir()
    (run / "config.json").write_text(
        '{"config": {"data_dir": "%s", "synthetic": false}}' % (tmp_path / "data")
    )
    assert _common.class_names(run / "best.keras", 2) == ("a", "b")
    assert _common.class_names(run / "best.keras", 3) == ("class_0", "class_1", "class_2")


def test_evaluate_prints_accuracy_per_class_and_writes_the_confusion_matrix(
    run_model, tmp_path, capsys
):
    path, model = run_model
    # Three of the model's classes, each folder holding images of several kinds, so that
    # the accuracy is neither 0 nor 1; folders named by the model's class names.
    x = images(12, seed=3)
    folders = {"kind2": x[:4], "kind5": x[4:8], "kind7": x[8:]}
    for split in ("train", "test"):
        for name, part in folders.items():
            save_images(tmp_path / "data" / split / name, part, [f"{i}.png" for i in range(4)])
    plot = tmp_path / "cm.png"
    argv = ["evaluate", path, "--data-dir", str(tmp_path / "data"), "--plot", str(plot)]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    predicted = model.predict(x.astype("float32"), verbose=0).argmax(axis=1)
    labels = np.repeat([2, 5, 7], 4)
    assert f"accuracy {np.mean(predicted == labels):.4f} on 12 test images" in out
    for k in (2, 5, 7):
        accuracy = np.mean(predicted[labels == k] == k)
        assert f"  kind{k}  {accuracy:.4f}  (4 images)" in out
    assert "kind0" not in out  # classes without images are not listed
    assert plot.stat().st_size > 0 and f"confusion matrix: {plot}" in out


def test_evaluate_refuses_a_class_the_model_does_not_know(run_model, tmp_path, capsys):
    for split in ("train", "test"):
        save_images(tmp_path / split / "zebra", images(1), ["0.png"])
    argv = ["evaluate", run_model[0], "--data-dir", str(tmp_path)]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("keras-resnet evaluate: error: class folders the model does not")
