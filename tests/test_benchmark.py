"""benchmarks/: the PyTorch reference is the same network, and the harness runs end to end.

Untimed: the end-to-end check runs one tiny measurement (batch 4, one warm-up and one
timed step) of the current backend and of the reference, and checks the table, the JSON
and the ratio arithmetic, never the figures themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import pytest

from keras_resnet import FusedBatchNormalization, get_model
from keras_resnet.models.statistics import multiply_accumulates, trainable_parameters

BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS_DIR))
import benchmark  # noqa: E402

pytest.importorskip("torch")  # the reference is plain PyTorch
import torch_reference  # noqa: E402


@pytest.mark.parametrize(
    ("name", "stem", "size"),
    [("resnet18", "cifar", 32), ("resnet50", "imagenet", 64), ("resnet34", "cifar", 32)],
)
def test_reference_has_the_keras_models_parameters_and_macs(name, stem, size):
    reference = torch_reference.resnet(name, num_classes=10, stem=stem)
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, size, size) if channels_first else (size, size, 3)
    model = get_model(name, num_classes=10, input_shape=shape, stem=stem)
    assert torch_reference.parameter_count(reference) == trainable_parameters(model)
    assert torch_reference.multiply_accumulates(reference, size) == multiply_accumulates(model)


def test_reference_steps_train_and_infer():
    train_step, inference_step, model = torch_reference.make_steps(
        "resnet18", stem="cifar", batch_size=2, image_size=16, precision="bf16"
    )
    losses = [train_step() for _ in range(2)]
    assert all(isinstance(loss, float) for loss in losses)
    assert tuple(inference_step().shape) == (2, 10)
    assert next(model.parameters()).dtype.is_floating_point


def test_reference_refuses_unknown_names():
    with pytest.raises(ValueError, match="Received: name='resnet19'"):
        torch_reference.resnet("resnet19")
    with pytest.raises(ValueError, match="Received: precision='fp8'"):
        torch_reference.make_steps(
            "resnet18", stem="cifar", batch_size=2, image_size=16, precision="fp8"
        )


def test_time_steps_excludes_warmup_and_takes_the_median():
    calls = []
    result = benchmark.time_steps(
        lambda: calls.append(1), batch_size=4, warmup=2, steps=3, repeats=5
    )
    assert len(calls) == 2 + 3 * 5
    assert len(result["runs"]) == 5
    assert result["median"] == sorted(result["runs"])[2]


def test_ratios_flops_and_input_side_arithmetic():
    measured = {
        "train": {"median": 10.0},
        "inference": {"median": 40.0},
        "macs": 1e9,
        "peak_rss_mib": 100.0,
    }
    rows = [
        benchmark.make_row("jax", "resnet18", 32, measured),
        benchmark.make_row(
            benchmark.REFERENCE, "resnet18", 32, {**measured, "train": {"median": 20.0}}
        ),
        benchmark.make_row("jax", "resnet50", 128, measured),  # no reference row
    ]
    benchmark.add_ratios(rows)
    assert rows[0]["train_flops"] == 10.0 * 3 * 2 * 1e9
    assert rows[0]["inference_flops"] == 40.0 * 2 * 1e9
    assert (rows[0]["train_ratio"], rows[0]["inference_ratio"]) == (0.5, 1.0)
    assert (rows[1]["train_ratio"], rows[1]["inference_ratio"]) == (1.0, 1.0)
    assert rows[2]["train_ratio"] is None
    table = benchmark.format_table(rows, peak_flops=1e12)
    assert "| 0.50× |" in table and "| – |" in table
    assert "0.060 (6.0%)" in table  # 6e10 FLOP/s of a 1e12 peak
    fractions = benchmark.input_side_fractions(with_input=50.0, bare=100.0, feed=500.0)
    assert fractions == pytest.approx({"preprocessing_fraction": 0.5, "feed_fraction": 0.1})


def test_flags_are_validated():
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--steps=0"])
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--resnet50-size=16"])
    assert benchmark.parse_args([]).batch_size == benchmark.BATCH_SIZE
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--data-format=nhwc"])


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("data_format", "channels_first", "torch, channels_first"),
        ("batch_norm", "keras", "torch, Keras batch norm"),
    ],
)
def test_rows_name_their_variant_and_the_flag_reaches_the_workers(field, value, label):
    measured = {
        "train": {"median": 1.0},
        "inference": {"median": 1.0},
        "macs": 1,
        "peak_rss_mib": 1.0,
        field: value,
    }
    rows = benchmark.add_ratios([benchmark.make_row("torch", "resnet18", 32, measured)])
    assert f"| {label} |" in benchmark.format_table(rows, peak_flops=1.0)
    flag = f"--{field.replace('_', '-')}={value}"
    assert flag in benchmark._forwarded_flags(benchmark.parse_args([flag]))


def test_keras_batch_norm_makes_every_layer_run_keras_ops():
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--batch-norm=unfused"])
    model = get_model("resnet20")
    x = keras.ops.ones((2, 8, 8, 16))
    assert benchmark.use_batch_norm(model, "keras") == 19  # 1 stem + 2 per block x 9
    assert all(layer._fused_kernel(x, None) is None for layer in _batch_norms(model))
    benchmark.use_batch_norm(model, "fused")
    assert all(layer.fused for layer in _batch_norms(model))


def _batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, FusedBatchNormalization)]


@pytest.mark.parametrize(
    "precision, dtype", [("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16")]
)
def test_matmul_peak_is_measured_in_the_precision_of_the_run(precision, dtype):
    peak = benchmark.matmul_peak_flops(64, repeats=1, precision=precision)
    assert peak["flops"] > 0 and peak["dtype"] == dtype and dtype in peak["device"]


def test_harness_runs_end_to_end(tmp_path, capsys):
    backend = keras.backend.backend()
    out = tmp_path / "results.json"
    results = benchmark.main(
        [
            "--models=resnet18",
            f"--backends={backend}",
            "--batch-size=4",
            "--image-size=16",
            "--warmup=1",
            "--steps=1",
            "--repeats=1",
            f"--json={out}",
        ]
    )
    assert json.loads(out.read_text())["table"] == results["table"]
    rows = {row["implementation"]: row for row in results["rows"]}
    assert set(rows) == {backend, benchmark.REFERENCE}
    keras_row, reference_row = rows[backend], rows[benchmark.REFERENCE]
    assert reference_row["train_ratio"] == 1.0
    assert keras_row["train_ratio"] == pytest.approx(
        keras_row["train_img_s"] / reference_row["train_img_s"]
    )
    assert keras_row["measured"]["parameters"] == reference_row["measured"]["parameters"]
    assert keras_row["measured"]["macs"] == reference_row["measured"]["macs"]
    assert keras_row["peak_rss_mib"] > 0
    if sys.platform.startswith("linux"):  # read from /proc/stat by each worker
        assert 0 <= keras_row["cpu_steal_fraction"] <= 1
    assert set(keras_row["input_side"]) >= {"preprocessing_fraction", "feed_fraction"}
    assert reference_row["input_side"] is None
    lines = results["table"].splitlines()
    assert len(lines) == 2 + 2 and lines[0].startswith("| model | implementation |")
    assert backend in results["input_side_table"]
    printed = capsys.readouterr().out
    assert results["table"] in printed and "matrix-multiply peak" in printed


def test_a_failed_measurement_is_listed_and_the_others_are_kept(tmp_path, monkeypatch, capsys):
    measured = {
        "train": {"median": 10.0},
        "inference": {"median": 30.0},
        "macs": 5e8,
        "parameters": 11_000_000,
        "peak_rss_mib": 900.0,
    }

    timeout = "The jax measurement of resnet18 did not finish within 5 s (--worker-timeout)."

    def measure(implementation, model, args):
        if implementation == "jax":
            raise benchmark.MeasurementError(timeout)
        return measured

    monkeypatch.setattr(benchmark, "measure_in_subprocess", measure)
    monkeypatch.setattr(benchmark, "matmul_peak_flops", lambda **_: {"flops": 1e12, "device": "x"})
    out = tmp_path / "results.json"
    results = benchmark.main(["--models=resnet18", "--backends", "jax", "torch", f"--json={out}"])
    assert [row["implementation"] for row in results["rows"]] == ["torch", benchmark.REFERENCE]
    assert results["failures"] == [{"model": "resnet18", "implementation": "jax", "error": timeout}]
    assert results["table"].endswith(f"Not measured:\n- resnet18 on jax: {timeout}")
    assert json.loads(out.read_text())["failures"] == results["failures"]
    assert "did not finish" in capsys.readouterr().err


def test_a_worker_past_its_timeout_raises_a_measurement_error(monkeypatch):
    def run(*_, **kwargs):
        raise benchmark.subprocess.TimeoutExpired("python", kwargs["timeout"])

    monkeypatch.setattr(benchmark.subprocess, "run", run)
    args = benchmark.parse_args(["--worker-timeout=5"])
    with pytest.raises(benchmark.MeasurementError, match=r"did not finish within 5 s"):
        benchmark.measure_in_subprocess("jax", "resnet18", args)


def test_steal_fraction_is_the_stolen_share_of_cpu_time():
    assert benchmark.steal_fraction((10, 1000), (60, 1500)) == 0.1
    assert benchmark.steal_fraction(None, (60, 1500)) is None
    assert benchmark.steal_fraction((10, 1000), (10, 1000)) is None  # no time passed
    if sys.platform.startswith("linux"):
        steal, total = benchmark.cpu_times()
        assert 0 <= steal <= total


def test_table_shows_the_cpu_steal_of_each_row():
    measured = {
        "train": {"median": 10.0},
        "inference": {"median": 30.0},
        "macs": 5e8,
        "peak_rss_mib": 900.0,
        "cpu_steal_fraction": 0.42,
    }
    rows = benchmark.add_ratios([benchmark.make_row("torch", "resnet18", 32, measured)])
    header, _, line = benchmark.format_table(rows, peak_flops=1e12).splitlines()
    assert header.endswith("| CPU steal |") and line.endswith("| 900 | 42% |")


def test_the_results_record_and_print_the_machine(tmp_path, monkeypatch, capsys):
    from keras_resnet import hardware

    cpu = hardware.CpuInfo("Test CPU 9000", frozenset({"avx2", "fma", "amx_bf16", "fpu"}))
    monkeypatch.setattr(hardware, "cpu_info", lambda *_: cpu)
    measured = {
        "train": {"median": 10.0},
        "inference": {"median": 30.0},
        "macs": 5e8,
        "peak_rss_mib": 900.0,
    }
    monkeypatch.setattr(benchmark, "measure_in_subprocess", lambda *_: measured)
    monkeypatch.setattr(benchmark, "matmul_peak_flops", lambda **_: {"flops": 1e12, "device": "x"})
    out = tmp_path / "results.json"
    results = benchmark.main(["--models=resnet18", "--backends", "torch", f"--json={out}"])
    assert results["machine"] == hardware.machine_record(cpu)
    assert results["machine"]["cpu_model"] == "Test CPU 9000"
    assert results["machine"]["cpu_flags"] == ["avx2", "fma", "amx_bf16"]
    assert json.loads(out.read_text())["machine"] == results["machine"]
    count = results["machine"]["cpu_count"]
    printed = f"machine: Test CPU 9000, {count} CPUs, flags: avx2 fma amx_bf16"
    assert printed in capsys.readouterr().out.splitlines()
