"""The keras-resnet command: dispatch, --help of every command, bad input (one line on
stderr, exit status 2), a light --help, and a normal run without backend noise."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_resnet import cli
from keras_resnet.cli import _common

PROCESS_TIMEOUT_S = 300


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--help" in out


def test_top_level_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in cli.COMMANDS)


def test_top_level_help_imports_no_backend():
    code = (
        "import sys, json\n"
        "from keras_resnet.cli import main\n"
        "main(['--help'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert [name for name in ("keras", "tensorflow", "jax", "torch") if name in loaded] == []


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_command(capsys):
    assert cli.main(["serve"]) == 2
    assert "unknown command 'serve'" in one_line_error(capsys)


@pytest.mark.parametrize("command", ["export", "predict", "evaluate", "summary"])
def test_missing_model_file(command, tmp_path, capsys):
    missing = str(tmp_path / "missing.keras")
    extra = {
        "export": ["--format", "onnx", "--output", str(tmp_path / "m.onnx")],
        "predict": ["image.png"],
        "evaluate": ["--data-dir", str(tmp_path)],
        "summary": [],
    }[command]
    assert cli.main([command, missing, *extra]) == 2
    assert one_line_error(capsys) == (
        f"keras-resnet {command}: error: model file not found: {missing}"
    )


def test_unknown_export_format(run_model, tmp_path, capsys):
    assert cli.main(["export", run_model[0], "--format", "tflite", "--output", "m"]) == 2
    assert one_line_error(capsys) == (
        "keras-resnet export: error: unknown format 'tflite'; choose one of saved_model, "
        "onnx, litert"
    )


def test_undecodable_image(run_model, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert cli.main(["predict", run_model[0], str(bad)]) == 2
    assert one_line_error(capsys) == (
        f"keras-resnet predict: error: cannot decode image {bad}: UnidentifiedImageError"
    )


def test_bad_flag_is_one_line(run_model, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", run_model[0], "x.png", "--top-k", "many"])
    assert exit_info.value.code == 2
    assert "argument --top-k: invalid int value: 'many'" in one_line_error(capsys)


def test_summary_of_a_named_model_and_of_a_run_model(run_model, capsys):
    assert cli.main(["summary", "resnet20"]) == 0
    named = capsys.readouterr().out
    assert "trainable parameters  269,722" in named  # the paper's 0.27M
    assert cli.main(["summary", run_model[0]]) == 0
    saved = capsys.readouterr().out
    # The run's model is the same ResNet-20 behind its preprocessing (no parameters there).
    assert "trainable parameters  269,722" in saved
    macs = [line for line in named.splitlines() if "multiply-accumulates" in line]
    assert macs and macs[0] in saved


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the noise is TensorFlow's native logging: checked once, in the tensorflow session",
)
def test_a_cpu_run_prints_no_backend_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_resnet.cli", "summary", "resnet20"],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    for noise in ("Could not find cuda drivers", "failed call to cuInit", "absl::InitializeLog"):
        assert noise not in output


def test_filtered_stderr_keeps_other_lines_in_order(capfd):
    with _common.filtered_stderr([b"noise"]):
        os.write(2, b"first\nsome noise here\nsecond\n")
    assert capfd.readouterr().err == "first\nsecond\n"


def test_a_users_log_level_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    _common.quiet_backends([])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
