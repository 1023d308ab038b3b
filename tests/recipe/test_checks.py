"""What the training and search commands refuse before training, each with exit status 2
and one line: a precision the CPU would emulate (CPU flags injected, never this machine's)
and an output folder that cannot be created. Nothing is written by a refused command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from processes import load_script

from keras_resnet import hardware
from keras_resnet.recipe import training
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.distribution import UnsupportedSetupError

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_FLAGS = [
    "--synthetic",
    "--model=resnet20",
    "--epochs=1",
    "--batch-size=64",
    "--train-subset=128",
    "--test-subset=32",
    "--verbose=0",
]
AVX2_ONLY = hardware.CpuInfo("AMD EPYC 7B12", frozenset({"avx2", "fma"}))
WITH_AMX = hardware.CpuInfo("Intel Xeon 8481C", frozenset({"avx2", "avx512_bf16", "amx_bf16"}))
BF16_REFUSED = (
    "`precision='bf16'` would be emulated on this CPU (AMD EPYC 7B12): it lacks AVX512_BF16 "
    "and AMX-BF16, so a training step takes many times longer than in float32. Use "
    "--precision fp32, or add --allow-emulated-precision to run it anyway. "
    "Received: precision='bf16'"
)


class _ReachedTrainingError(Exception):
    """Raised where training would start: the checks before it passed."""


@pytest.fixture(scope="module")
def cli():
    return load_script(REPO_ROOT / "experiments" / "cifar10.py", "cifar10_cli_checks")


@pytest.fixture(scope="module")
def search_cli():
    return load_script(REPO_ROOT / "tuner" / "search.py", "search_cli_checks")


@pytest.fixture
def on_a_cpu(monkeypatch):
    """Train "on a CPU" whose flags the test sets: ``on_a_cpu(info)``."""

    def use(info: hardware.CpuInfo, device: str = "cpu"):
        monkeypatch.setattr(hardware, "cpu_info", lambda *_: info)
        monkeypatch.setattr(hardware, "training_device", lambda *_: device)

    return use


@pytest.fixture
def stop_before_data(monkeypatch):
    """Loading the data raises ``_ReachedTrainingError``: only a run past every check."""

    def reached(*_, **__):
        raise _ReachedTrainingError

    monkeypatch.setattr(training, "prepare_split", reached)


def _refused(main, flags, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(flags)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bf16_on_a_cpu_without_native_bf16_is_refused_before_anything(
    cli, capsys, tmp_path, on_a_cpu, stop_before_data
):
    on_a_cpu(AVX2_ONLY)
    flags = [*TINY_FLAGS, "--precision=bf16", f"--output-dir={tmp_path / 'runs'}"]
    assert _refused(cli.main, flags, capsys) == f"error: {BF16_REFUSED}"
    assert list(tmp_path.iterdir()) == []


def test_fp16_on_a_cpu_is_refused_suggesting_native_bf16(
    cli, capsys, tmp_path, on_a_cpu, stop_before_data
):
    on_a_cpu(WITH_AMX)
    flags = [*TINY_FLAGS, "--precision=fp16", f"--output-dir={tmp_path / 'runs'}"]
    assert _refused(cli.main, flags, capsys) == (
        "error: `precision='fp16'` needs a GPU: on this CPU (Intel Xeon 8481C) the backends "
        "do not train in float16 natively, so it runs slower than float32. Use --precision "
        "bf16, or add --allow-emulated-precision to run it anyway. Received: precision='fp16'"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "precision, info, device, extra",
    [
        ("bf16", AVX2_ONLY, "cpu", ["--allow-emulated-precision"]),
        ("fp16", AVX2_ONLY, "cpu", ["--allow-emulated-precision"]),
        ("bf16", WITH_AMX, "cpu", []),
        ("fp16", AVX2_ONLY, "accelerator", []),
        ("bf16", AVX2_ONLY, "accelerator", []),
    ],
)
def test_the_override_native_bf16_and_an_accelerator_pass_the_check(
    cli, tmp_path, on_a_cpu, stop_before_data, precision, info, device, extra
):
    on_a_cpu(info, device)
    with pytest.raises(_ReachedTrainingError):
        cli.main([*TINY_FLAGS, f"--precision={precision}", f"--output-dir={tmp_path}", *extra])


def test_the_override_is_a_config_field_that_keeps_the_run(cli):
    config, _ = cli.parse_config(["--precision=bf16", "--allow-emulated-precision"])
    assert config.allow_emulated_precision is True
    plain = TrainConfig(precision="bf16")
    assert config.fingerprint() == plain.fingerprint()  # the same run, resumable either way
    with pytest.raises(UnsupportedSetupError, match="^`precision='bf16'` would be emulated"):
        training.check_precision(plain, device="cpu", cpu=AVX2_ONLY)
    training.check_precision(dataclasses.replace(plain, allow_emulated_precision=True))


def test_the_search_refuses_an_emulated_precision_too(search_cli, capsys, tmp_path, on_a_cpu):
    on_a_cpu(AVX2_ONLY)
    flags = [*TINY_FLAGS, "--precision=bf16", f"--directory={tmp_path}"]
    assert _refused(search_cli.main, flags, capsys) == f"error: {BF16_REFUSED}"
    assert list(tmp_path.iterdir()) == []


def test_an_output_dir_that_cannot_be_created_exits_2_with_one_line(cli, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    output_dir = blocker / "runs"
    config, _ = cli.parse_config([*TINY_FLAGS, f"--output-dir={output_dir}"])
    run_dir = output_dir / config.resolved_run_name()
    flags = [*TINY_FLAGS, f"--output-dir={output_dir}"]
    assert _refused(cli.main, flags, capsys) == (
        f"error: Cannot create the run folder {run_dir}: Not a directory. Choose an "
        f"--output-dir that can be written. Received: output_dir='{output_dir}'"
    )
    assert blocker.read_text() == "not a folder"


def test_config_json_records_the_device_and_the_machine(on_a_cpu):
    from keras_resnet.recipe import run_folder

    on_a_cpu(AVX2_ONLY)
    record = run_folder.environment("synthetic")
    assert record["device"] == "cpu"
    assert record["machine"] == hardware.machine_record(AVX2_ONLY)
    assert record["machine"]["cpu_flags"] == ["avx2", "fma"]


def test_a_search_directory_that_cannot_be_created_exits_2_with_one_line(
    search_cli, capsys, tmp_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    directory = blocker / "searches"
    assert _refused(search_cli.main, [*TINY_FLAGS, f"--directory={directory}"], capsys) == (
        f"error: Cannot create the search folder {directory}: Not a directory. Choose a "
        f"--directory that can be written. Received: directory='{directory}'"
    )
