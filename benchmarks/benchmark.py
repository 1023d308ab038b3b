"""Training and inference speed of keras_resnet on each Keras backend, against plain PyTorch.

    python benchmarks/benchmark.py                       # every installed backend
    python benchmarks/benchmark.py --backends torch jax --repeats 5 --json out.json
    python benchmarks/benchmark.py --data-format channels_first --precision bf16

For each model (ResNet-18 with the CIFAR stem at 32x32; ResNet-50 with the ImageNet stem at
``--resnet50-size``) and each implementation (keras_resnet on each Keras backend, and
``torch_reference.py`` in channels_last as the reference), one subprocess builds the model,
runs ``--warmup`` untimed steps, then ``--repeats`` timed runs of ``--steps`` steps, and
reports the median images/s of training and of inference, and its peak memory (resident
set; the accelerator's peak where there is one). Each measurement has its own process
because Keras fixes its backend per process and peak memory is per process.

The table gives each row's ratio to the PyTorch reference of the same model, and the
achieved FLOP/s (2 FLOPs per multiply-accumulate of the forward pass, training counted as
3 forward passes) next to the machine's measured matrix-multiply peak.

The results record the machine (``keras_resnet.hardware.machine_record``: the CPU model,
its speed-deciding flags such as avx512_bf16 and amx_bf16, the core count), printed above
the table, since the same command gives other figures on another CPU.

Each row also gives the share of CPU time the host took away during its measurement
(*steal*, from ``/proc/stat`` on a Linux virtual machine): on a shared host a row measured
under high steal ran on fewer cores than the others, so compare rows only where it is low.

``--batch-norm keras`` measures the Keras backends with Keras's own batch normalization
ops instead of ``FusedBatchNormalization``'s fused kernels (rows say "Keras batch norm"),
so that what the fused kernels give is measured against the same reference.

The input side is measured on ResNet-18 for each Keras backend: the training step of the
model with its augmentation and normalization layers (``training.build_training_model``)
against the bare network on already normalized images, and the cost of feeding NumPy
arrays (taking a shuffled batch and converting it to a backend tensor), both as a
fraction of the full training step.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from keras_resnet import hardware

# --- settings ------------------------------------------------------------------------------
MODELS = ("resnet18", "resnet50")
STEMS = {"resnet18": "cifar", "resnet50": "imagenet"}
IMAGE_SIZE = 32  # ResNet-18 with the CIFAR stem
RESNET50_SIZE = 128  # ImageNet stem at a size a CPU affords; 224 on an accelerator
BATCH_SIZE = 128
WARMUP = 3
STEPS = 10
REPEATS = 3
NUM_CLASSES = 10
PRECISIONS = ("fp32", "bf16", "fp16")
MATMUL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
BATCH_NORMS = ("fused", "keras")
REFERENCE = "torch-reference"
MATMUL_SIZE = 2048
WORKER_TIMEOUT_S = 1800

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent


# --- timing --------------------------------------------------------------------------------


def time_steps(
    step: Callable[[], object], *, batch_size: int, warmup: int, steps: int, repeats: int
) -> dict:
    """Images/s of ``step`` (one batch per call): ``warmup`` untimed calls, then ``repeats``
    timed runs of ``steps`` calls; the median run is the figure.

    Example:
        >>> time_steps(lambda: None, batch_size=4, warmup=1, steps=2, repeats=3)["median"] > 0
        True
    """
    for _ in range(warmup):
        step()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        runs.append(batch_size * steps / (time.perf_counter() - start))
    return {"median": statistics.median(runs), "runs": runs}


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB, macOS bytes).

    Example:
        >>> peak_rss_mib() > 0
        True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) CPU time in ticks since boot from ``/proc/stat``; None off Linux.

    On a virtual machine, *steal* is time the host gave this machine's CPUs to others: a
    measurement taken while it is high ran on fewer cores than it seemed.

    Example:
        >>> steal, total = cpu_times()
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    return ticks[7] if len(ticks) > 7 else 0, sum(ticks[:8])


def steal_fraction(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen by the host between two ``cpu_times`` readings.

    Example:
        >>> steal_fraction((10, 1000), (60, 1500))
        0.1
    """
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def matmul_peak_flops(size: int = MATMUL_SIZE, repeats: int = 3, precision: str = "fp32") -> dict:
    """The measured FLOP/s of a ``size``x``size`` matrix multiply in ``precision``'s dtype
    (bf16 and fp16 runs are compared with a bfloat16 or float16 peak, not a float32 one):
    with torch on the GPU where there is one, else with torch on the CPU; with NumPy
    (float32 only) where torch is not installed. The best of ``repeats``.

    Example:
        >>> matmul_peak_flops(64, 1, "bf16")["dtype"]
        'bfloat16'
    """
    flops = 2 * size**3
    if importlib.util.find_spec("torch") is not None:
        import torch

        dtype = getattr(torch, MATMUL_DTYPES[precision])
        device = "cuda" if torch.cuda.is_available() else "cpu"
        a = torch.randn(size, size, device=device).to(dtype)
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"

        def multiply():
            product = a @ a
            if device == "cuda":
                torch.cuda.synchronize()
            return product

        device_label = f"{name} (torch {MATMUL_DTYPES[precision]})"
    else:
        if precision != "fp32":
            raise SystemExit(
                f"The {precision} matrix-multiply peak needs torch (NumPy has no "
                f"{MATMUL_DTYPES[precision]} matmul). Install torch or measure fp32."
            )
        import numpy as np

        a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)

        def multiply():
            return a @ a

        device_label = "cpu (numpy float32)"
    multiply()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        multiply()
        times.append(time.perf_counter() - start)
    return {
        "flops": flops / min(times),
        "device": device_label,
        "dtype": MATMUL_DTYPES[precision],
    }


# --- workers: one measurement per process ----------------------------------------------------


def _image_size(model: str, args) -> int:
    return args.resnet50_size if model == "resnet50" else args.image_size


def run_reference(model: str, args) -> dict:
    """Measure ``torch_reference`` (channels_last) in this process."""
    sys.path.insert(0, str(HERE))
    import torch_reference

    size = _image_size(model, args)
    train_step, inference_step, net = torch_reference.make_steps(
        model,
        stem=STEMS[model],
        batch_size=args.batch_size,
        image_size=size,
        num_classes=NUM_CLASSES,
        precision=args.precision,
    )
    timing = dict(batch_size=args.batch_size, warmup=args.warmup, steps=args.steps)
    train = time_steps(train_step, repeats=args.repeats, **timing)
    inference = time_steps(inference_step, repeats=args.repeats, **timing)
    device_peak = None
    import torch

    if torch.cuda.is_available():
        device_peak = torch.cuda.max_memory_allocated() / 2**20
    return {
        "train": train,
        "inference": inference,
        "macs": torch_reference.multiply_accumulates(net, size),
        "parameters": torch_reference.parameter_count(net),
        "peak_rss_mib": peak_rss_mib(),
        "peak_device_mib": device_peak,
        "versions": {"torch": torch.__version__},
    }


def run_keras(model: str, args) -> dict:
    """Measure keras_resnet on this process's Keras backend (``KERAS_BACKEND``)."""
    import keras
    import numpy as np

    from keras_resnet import get_model
    from keras_resnet.models.builders import IMAGENET_STEM_MIN_SIZE
    from keras_resnet.models.statistics import multiply_accumulates, trainable_parameters
    from keras_resnet.recipe import training
    from keras_resnet.recipe.config import TrainConfig

    size = _image_size(model, args)
    config = TrainConfig(
        model=model,
        precision=args.precision,
        batch_size=args.batch_size,
        jit_compile=args.jit_compile,
        verbose=0,
    )
    if args.data_format:
        keras.config.set_image_data_format(args.data_format)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(0)
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, size, size) if channels_first else (size, size, 3)
    x_raw = rng.uniform(0, 255, (args.batch_size, *shape)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, args.batch_size).astype("int32")
    mean, std = (127.5,) * 3, (64.0,) * 3
    x_tensor, y_tensor = keras.ops.convert_to_tensor(x_raw), keras.ops.convert_to_tensor(y)
    # The bare network gets the images its training model would hand it: normalized.
    x_normalized = keras.ops.convert_to_tensor((x_raw - mean[0]) / std[0])
    timing = dict(batch_size=args.batch_size, warmup=args.warmup, steps=args.steps)

    with training.precision_policy(config):
        net = get_model(model, num_classes=NUM_CLASSES, input_shape=shape, stem=STEMS[model])
        use_batch_norm(net, args.batch_norm)
        training.compile_model(net, config)
        # Tensors already on the device, so the steps leave out feeding (measured below).
        train = time_steps(
            lambda: net.train_on_batch(x_normalized, y_tensor), **timing, repeats=args.repeats
        )
        inference = time_steps(
            lambda: net.predict_on_batch(x_normalized), **timing, repeats=args.repeats
        )
        result = {
            "train": train,
            "inference": inference,
            "macs": multiply_accumulates(net),
            "parameters": trainable_parameters(net),
            # Before the input-side models below add their own memory.
            "peak_rss_mib": peak_rss_mib(),
            "peak_device_mib": _keras_device_peak_mib(),
        }
        # build_training_model picks the stem by size: compare like with like.
        if args.input_side and STEMS[model] == "cifar" and size < IMAGENET_STEM_MIN_SIZE:
            full = training.build_training_model(config, mean, std, NUM_CLASSES, size)
            use_batch_norm(full, args.batch_norm)
            training.compile_model(full, config)
            with_input = time_steps(
                lambda: full.train_on_batch(x_tensor, y_tensor), **timing, repeats=args.repeats
            )
            order = rng.permutation(len(x_raw))

            def feed():
                batch = keras.ops.convert_to_tensor(x_raw[order])
                keras.ops.convert_to_numpy(batch[:1])  # wait for the copy to finish

            fed = time_steps(feed, **timing, repeats=args.repeats)
            result["input_side"] = input_side_fractions(
                with_input["median"], train["median"], fed["median"]
            )
            result["input_side"]["train_with_preprocessing"] = with_input
    backend = keras.backend.backend()
    result["versions"] = {"keras": keras.__version__, backend: sys.modules[backend].__version__}
    result["data_format"] = keras.config.image_data_format()
    result["batch_norm"] = args.batch_norm
    return result


def use_batch_norm(model, kind: str) -> int:
    """Make every ``FusedBatchNormalization`` of ``model`` (nested models included) run
    the fused kernels (``kind="fused"``) or Keras's ops (``"keras"``), before the model is
    compiled; return how many layers that is.

    Example:
        >>> use_batch_norm(get_model("resnet20"), "keras")
        19
    """
    import keras

    from keras_resnet.models.layers import FusedBatchNormalization

    def walk(container):
        for layer in container.layers:
            yield layer
            if isinstance(layer, keras.Model):
                yield from walk(layer)

    layers = [layer for layer in walk(model) if isinstance(layer, FusedBatchNormalization)]
    for layer in layers:
        layer.fused = kind == "fused"
    return len(layers)


def input_side_fractions(with_input: float, bare: float, feed: float) -> dict:
    """The shares of a full training step (images/s ``with_input``) taken by the
    augmentation + normalization layers (the step without them runs at ``bare``) and by
    feeding the batch (``feed`` batches' images/s alone).

    Example:
        >>> input_side_fractions(with_input=50.0, bare=100.0, feed=500.0)
        {'preprocessing_fraction': 0.5, 'feed_fraction': 0.1}
    """
    step = 1.0 / with_input
    return {
        "preprocessing_fraction": (step - 1.0 / bare) / step,
        "feed_fraction": (1.0 / feed) / step,
    }


def _keras_device_peak_mib() -> float | None:
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        return (device.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**20
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


# --- the driver ---------------------------------------------------------------------------


def installed_backends() -> list[str]:
    """Keras backends whose library is installed here, in ``KERAS_BACKENDS`` order.

    Example:
        >>> "torch" in installed_backends()
        True
    """
    if importlib.util.find_spec("keras") is None:
        return []
    return [name for name in KERAS_BACKENDS if importlib.util.find_spec(name) is not None]


class MeasurementError(RuntimeError):
    """One implementation's measurement failed or ran past ``--worker-timeout``."""


def measure_in_subprocess(implementation: str, model: str, args) -> dict:
    """Run one measurement in a fresh process; raise ``MeasurementError`` with its output
    if it fails or runs past ``args.worker_timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            *_forwarded_flags(args),
            "--worker",
            implementation,
            "--models",
            model,
            "--json",
            str(out),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        if implementation != REFERENCE:
            env["KERAS_BACKEND"] = implementation
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=args.worker_timeout
            )
        except subprocess.TimeoutExpired:
            raise MeasurementError(
                f"The {implementation} measurement of {model} did not finish within "
                f"{args.worker_timeout:g} s (--worker-timeout)."
            ) from None
        if done.returncode != 0:
            raise MeasurementError(
                f"The {implementation} measurement of {model} failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return json.loads(out.read_text())


def _forwarded_flags(args) -> list[str]:
    flags = [
        f"--batch-size={args.batch_size}",
        f"--image-size={args.image_size}",
        f"--resnet50-size={args.resnet50_size}",
        f"--warmup={args.warmup}",
        f"--steps={args.steps}",
        f"--repeats={args.repeats}",
        f"--precision={args.precision}",
        f"--batch-norm={args.batch_norm}",
    ]
    if args.jit_compile is not None:
        flags.append("--jit-compile" if args.jit_compile else "--no-jit-compile")
    if not args.input_side:
        flags.append("--no-input-side")
    if args.data_format:
        flags.append(f"--data-format={args.data_format}")
    return flags


def make_row(implementation: str, model: str, size: int, measured: dict) -> dict:
    """One table row from a worker's measurement: throughput, FLOP/s, memory.

    Example:
        >>> row = make_row("torch", "resnet18", 32, {"train": {"median": 10.0},
        ...     "inference": {"median": 30.0}, "macs": 5e8, "peak_rss_mib": 900.0})
        >>> row["train_flops"]  # 10 img/s * 3 passes * 2 FLOPs * 5e8 MACs
        30000000000.0
    """
    forward_flops = 2.0 * measured["macs"]
    train, inference = measured["train"]["median"], measured["inference"]["median"]
    return {
        "model": model,
        "image_size": size,
        "implementation": implementation,
        "data_format": measured.get("data_format", "channels_last"),
        "batch_norm": measured.get("batch_norm"),
        "train_img_s": train,
        "inference_img_s": inference,
        "train_flops": 3.0 * forward_flops * train,
        "inference_flops": forward_flops * inference,
        "peak_rss_mib": measured["peak_rss_mib"],
        "peak_device_mib": measured.get("peak_device_mib"),
        "cpu_steal_fraction": measured.get("cpu_steal_fraction"),
        "input_side": measured.get("input_side"),
        "measured": measured,
    }


def add_ratios(rows: list[dict], reference: str = REFERENCE) -> list[dict]:
    """Each row's train and inference throughput over the reference row of its model
    (None where the model has no reference row).

    Example:
        >>> rows = add_ratios([
        ...     {"model": "m", "implementation": "torch-reference", "train_img_s": 50.0,
        ...      "inference_img_s": 100.0},
        ...     {"model": "m", "implementation": "jax", "train_img_s": 25.0,
        ...      "inference_img_s": 150.0}])
        >>> rows[1]["train_ratio"], rows[1]["inference_ratio"]
        (0.5, 1.5)
    """
    references = {row["model"]: row for row in rows if row["implementation"] == reference}
    for row in rows:
        ref = references.get(row["model"])
        for key in ("train", "inference"):
            row[f"{key}_ratio"] = row[f"{key}_img_s"] / ref[f"{key}_img_s"] if ref else None
    return rows


def format_table(rows: list[dict], peak_flops: float) -> str:
    """The markdown table of ``add_ratios`` rows, FLOP/s shown as a share of ``peak_flops``.

    Example:
        >>> print(format_table(rows, 1e12).splitlines()[0])
        | model | implementation | train img/s | vs ref | inference img/s | vs ref | ...
    """

    def ratio(value):
        return "–" if value is None else f"{value:.2f}×"

    def steal(value):
        return "–" if value is None else f"{value:.0%}"

    def memory(row):
        device = row.get("peak_device_mib")
        text = f"{row['peak_rss_mib']:,.0f}"
        return text if device is None else f"{text} / {device:,.0f}"

    lines = [
        "| model | implementation | train img/s | vs ref | inference img/s | vs ref "
        "| train TFLOP/s (% of peak) | peak memory MiB (host / device) | CPU steal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} ({row['image_size']}px) | {_label(row)} "
            f"| {row['train_img_s']:,.1f} | {ratio(row['train_ratio'])} "
            f"| {row['inference_img_s']:,.1f} | {ratio(row['inference_ratio'])} "
            f"| {row['train_flops'] / 1e12:.3f} ({100 * row['train_flops'] / peak_flops:.1f}%) "
            f"| {memory(row)} | {steal(row.get('cpu_steal_fraction'))} |"
        )
    return "\n".join(lines)


def _label(row: dict) -> str:
    """The implementation, with its data format where it is not channels_last, and
    "Keras batch norm" where the fused kernels were turned off."""
    label = row["implementation"]
    data_format = row.get("data_format", "channels_last")
    if data_format != "channels_last":
        label += f", {data_format}"
    if row.get("batch_norm") == "keras":
        label += ", Keras batch norm"
    return label


def format_input_side(rows: list[dict]) -> str:
    """The markdown table of the input side's shares of a training step.

    Example:
        >>> format_input_side([]).splitlines()[0]
        '| backend | model | augmentation + normalization | feeding NumPy arrays |'
    """
    lines = [
        "| backend | model | augmentation + normalization | feeding NumPy arrays |",
        "|---|---|---:|---:|",
    ]
    for row in rows:
        if row.get("input_side"):
            side = row["input_side"]
            lines.append(
                f"| {_label(row)} | {row['model']} "
                f"| {100 * side['preprocessing_fraction']:.1f}% "
                f"| {100 * side['feed_fraction']:.1f}% |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's flags (see the module docstring).

    Example:
        >>> parse_args(["--steps=2"]).steps
        2
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=KERAS_BACKENDS,
        default=None,
        help="Keras backends to measure (default: every installed one)",
    )
    parser.add_argument(
        "--no-reference", dest="reference", action="store_false", help="skip plain PyTorch"
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE, help="ResNet-18's")
    parser.add_argument("--resnet50-size", type=int, default=RESNET50_SIZE)
    parser.add_argument("--warmup", type=int, default=WARMUP, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=STEPS, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="median over these")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Keras jit_compile (default: training.default_jit_compile per backend)",
    )
    parser.add_argument(
        "--no-input-side",
        dest="input_side",
        action="store_false",
        help="skip the augmentation/normalization and feeding measurements",
    )
    parser.add_argument(
        "--data-format",
        choices=("channels_last", "channels_first"),
        default=None,
        help="Keras image data format (default: Keras's configured one); the PyTorch "
        "reference is always channels_last",
    )
    parser.add_argument(
        "--batch-norm",
        choices=BATCH_NORMS,
        default="fused",
        help="FusedBatchNormalization's fused kernels (default) or Keras's own ops",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker-timeout", type=float, default=WORKER_TIMEOUT_S)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("batch_size", "image_size", "resnet50_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1. "
                f"Received: {name}={getattr(args, name)}"
            )
    if args.warmup < 0:
        parser.error(f"--warmup must be at least 0. Received: warmup={args.warmup}")
    if args.resnet50_size < 32:
        parser.error(
            "--resnet50-size must be at least 32 (the ImageNet stem and four stages "
            f"downsample by 32). Received: resnet50_size={args.resnet50_size}"
        )
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    """Measure, print the tables, optionally write JSON; return the results.

    A measurement that fails or runs past ``--worker-timeout`` is listed under the table
    ("Not measured") and the others are still reported; the command then exits with 1.

    Example:
        >>> results = main(["--models", "resnet18", "--steps=1", "--repeats=1"])
        >>> sorted(results)
        ['failures', 'input_side_table', 'machine', 'matmul_peak', 'rows', 'settings', 'table']
    """
    args = parse_args(argv)
    if args.worker:
        (model,) = args.models
        run = run_reference if args.worker == REFERENCE else run_keras
        start = cpu_times()
        measured = run(model, args)
        measured["cpu_steal_fraction"] = steal_fraction(start, cpu_times())
        Path(args.json).write_text(json.dumps(measured))
        return measured

    backends = args.backends if args.backends is not None else installed_backends()
    implementations = [*backends, *([REFERENCE] if args.reference else [])]
    if not implementations:
        raise SystemExit("Nothing to measure: no Keras backend installed and --no-reference.")
    peak = matmul_peak_flops(precision=args.precision)
    rows, failures = [], []
    for model in args.models:
        for implementation in implementations:
            print(f"measuring {model} on {implementation} ...", file=sys.stderr, flush=True)
            try:
                measured = measure_in_subprocess(implementation, model, args)
            except MeasurementError as exc:
                # One failed measurement must not cost the others: report it and go on.
                print(exc, file=sys.stderr, flush=True)
                reason = str(exc).splitlines()[0]
                failures.append({"model": model, "implementation": implementation, "error": reason})
                continue
            rows.append(make_row(implementation, model, _image_size(model, args), measured))
    add_ratios(rows)
    table, input_table = format_table(rows, peak["flops"]), format_input_side(rows)
    if failures:
        table += "\n\nNot measured:\n" + "\n".join(
            f"- {failure['model']} on {failure['implementation']}: {failure['error']}"
            for failure in failures
        )
    settings = {key: value for key, value in vars(args).items() if key not in ("json", "worker")}
    machine = hardware.machine_record()
    print(f"machine: {hardware.describe_machine(machine)}")
    print(f"matrix-multiply peak: {peak['flops'] / 1e12:.3f} TFLOP/s on {peak['device']}")
    print(table)
    print()
    print(input_table)
    results = {
        "settings": settings,
        "machine": machine,
        "matmul_peak": peak,
        "rows": rows,
        "table": table,
        "input_side_table": input_table,
        "failures": failures,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(1 if main().get("failures") else 0)
