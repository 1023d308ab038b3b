"""ResNet-18 with the fast recipe on one GPU (JAX backend), for a machine without Keras.

On this machine, once: gather what travels (Keras's wheels, and the JPEG copy of CIFAR-10)
into folders git ignores::

    python benchmarks/gpu_fast_resnet18.py prepare --data-dir ../shared/datasets/cifar10-jpeg

On the GPU machine (JAX with CUDA, PyTorch, matplotlib and Pillow; no TensorFlow, no
Keras), from the repository root, with ``.whl`` and ``.carry`` carried along::

    python3 benchmarks/gpu_fast_resnet18.py run --output-dir "$OUT"

``run`` installs the carried wheels into a private folder when Keras is missing, trains
``--recipe fast`` ResNet-18 on the carried images (bf16 where an accelerator is found),
writes the run folder under ``--output-dir``, and prints the test accuracy and the wall
time (all of it, from the start of the command: install, data decoding, compilation,
training and the test evaluation) and writes them to ``summary.json``. Any recipe flag
changes the recipe (``--epochs``, ``--train-subset``, ``--precision`` ...); a rehearsal on
a CPU runs the same command with a tiny budget::

    python benchmarks/gpu_fast_resnet18.py run --data-dir ../shared/datasets/cifar10-jpeg \\
        --output-dir /tmp/gpu-rehearsal --epochs 1 --train-subset 512 --test-subset 256
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not

from keras_resnet.recipe.config import TrainConfig  # noqa: E402  (imports no Keras)
from keras_resnet.recipe.flags import add_config_arguments, config_from_args  # noqa: E402

WHEELS_DIR = ROOT / ".whl"
DATA_COPY = ROOT / ".carry" / "cifar10-jpeg"
# What Keras needs that the GPU machine lacks (its image has absl-py, h5py, ml-dtypes,
# numpy, packaging and rich): Keras, namex and optree, for its Python 3.12.
CARRIED_PACKAGES = ("keras", "namex", "optree")
GPU_PYTHON = "3.12"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)
SITE_DIR = Path("/tmp/keras-resnet-site")
RUN_NAME = "resnet18-fast-gpu"


def build_parser() -> argparse.ArgumentParser:
    """``prepare`` and ``run``; ``run`` takes every recipe flag of ``experiments/cifar10.py``.

    Example:
        >>> build_parser().parse_args(["run", "--epochs", "2"]).epochs
        2
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="gather the wheels and the images that travel")
    prepare.add_argument("--data-dir", type=Path, required=True, help="the JPEG copy of CIFAR-10")
    run = commands.add_parser("run", help="train and report (on the GPU machine)")
    add_config_arguments(run, omit={"recipe", "quick", "output_dir", "run_name"})
    run.add_argument(
        "--output-dir", type=Path, required=True, help="where the run folder goes ($OUT)"
    )
    run.add_argument(
        "--wheels", type=Path, default=WHEELS_DIR, help=f"carried wheels (default: {WHEELS_DIR})"
    )
    return parser


def prepare(data_dir: Path) -> None:
    """Download the wheels for the GPU machine's Python and link the images into ``.carry``."""
    versions = {name: _installed_version(name) for name in CARRIED_PACKAGES}
    WHEELS_DIR.mkdir(exist_ok=True)
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    for name, version in versions.items():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            + ["--only-binary=:all:", "--python-version", GPU_PYTHON, "--implementation", "cp"]
            + [*platforms, "-d", str(WHEELS_DIR), f"{name}=={version}"],
            check=True,
        )
    if not DATA_COPY.exists():
        DATA_COPY.parent.mkdir(exist_ok=True)
        # Hard links where the file system allows: no second copy on this machine.
        shutil.copytree(data_dir, DATA_COPY, copy_function=_link_or_copy)
    size = sum(f.stat().st_size for f in (*WHEELS_DIR.iterdir(), *DATA_COPY.rglob("*.jpg")))
    print(f"ready to carry: .whl and .carry, {size / 2**20:.1f} MiB (the limit is 64 MiB in all)")


def _installed_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def ensure_keras(wheels: Path) -> None:
    """Install the carried wheels into ``SITE_DIR`` and import from there, if Keras is missing."""
    if importlib.util.find_spec("keras") is not None:
        return
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not found:
        raise SystemExit(
            f"error: Keras is not installed and no wheels are in {wheels}: run "
            "`python benchmarks/gpu_fast_resnet18.py prepare --data-dir DIR` here first and "
            "carry .whl and .carry"
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
        + ["--no-compile", "--target", str(SITE_DIR), *map(str, found)],
        check=True,
    )
    sys.path.insert(0, str(SITE_DIR))


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """Train the fast recipe's ResNet-18 and return (and write) the summary."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ensure_keras(args.wheels)
    import keras

    accelerator = _accelerator()
    defaults = {
        "model": "resnet18",
        "data_dir": str(DATA_COPY),
        "precision": "bf16" if accelerator else "fp32",
        "output_dir": str(args.output_dir),
        "run_name": RUN_NAME,
        "cache_dir": "/tmp/keras-resnet-cache",
        "verbose": 2,
    }
    args.recipe = "fast"  # the preset under the flags given (flags.config_from_args)
    config: TrainConfig = config_from_args(parser, args, **defaults)
    from keras_resnet.recipe.training import train

    result = train(config)
    summary = {
        "test_accuracy": result.test_accuracy,
        "wall_seconds": time.perf_counter() - STARTED,
        "train_seconds": result.train_seconds,
        "epochs_completed": result.epochs_completed,
        "best_epoch": result.best_epoch,
        "device": accelerator or "cpu",
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "config": dataclasses.asdict(config),
    }
    (args.output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"test accuracy {summary['test_accuracy']:.4f}; wall time {summary['wall_seconds']:.1f} s "
        f"(training {summary['train_seconds']:.1f} s) on {summary['device']}"
    )
    return summary


def _accelerator() -> str | None:
    """The accelerator JAX trains on (its device kind), or None on a CPU."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    device = jax.devices()[0]
    return None if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.data_dir)
        return None
    args.output_dir.mkdir(parents=True, exist_ok=True)
    return run(parser, args)


if __name__ == "__main__":
    main()
