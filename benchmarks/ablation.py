"""The fast recipe's options, each alone and combined, at one fixed budget.

    python benchmarks/ablation.py --data-dir ../shared/datasets/cifar10-jpeg \\
        --seeds 0 1 --output-dir runs/ablation -- --model resnet20 --epochs 15

Each variant is the ``--recipe fast`` run with a few flags changed (``VARIANTS``); every
flag after ``--`` applies to all of them (the budget: model, epochs, subset). Each run is
an ordinary run folder under ``--output-dir``, so an interrupted ablation resumes where it
stopped and a finished run is not trained again. The command prints, and with
``--table`` writes, a markdown table: each variant's test accuracy per seed, their mean,
its difference from the plain fast recipe, and the training minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnet.recipe.flags import add_config_arguments, config_from_args  # noqa: E402

# Each option the time-to-accuracy work measures, alone on top of the fast recipe.
VARIANTS = {
    "fast": [],
    "ema": ["--ema"],
    "translate-test": ["--test-translate", "1"],
    "smoothing-0.2": ["--label-smoothing", "0.2"],
    "no-decay-on-vectors": ["--no-decay-norm-and-bias"],
    "zero-init-residual": ["--zero-init-residual"],
    "no-nesterov": ["--no-nesterov"],
    "batch-256": ["--batch-size", "256", "--lr", "0.2"],
    "peak-0.8": ["--lr", "0.8"],
}
BASELINE = "fast"


def build_parser() -> argparse.ArgumentParser:
    """The ablation's own flags; recipe flags follow ``--``.

    Example:
        >>> build_parser().parse_args(["--seeds", "0", "1"]).seeds
        [0, 1]
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the image folder (see experiments/cifar10.py)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="(default: 0 1)")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="which to run (default: all)",
    )
    parser.add_argument(
        "--combined",
        nargs="*",
        choices=[name for name in VARIANTS if name != BASELINE],
        default=[],
        help="also run these variants' flags together as one more variant",
    )
    parser.add_argument("--output-dir", default="runs/ablation", help="(default: runs/ablation)")
    parser.add_argument("--table", type=Path, help="also write the markdown table here")
    return parser


def variant_flags(variants: Sequence[str], combined: Sequence[str]) -> dict[str, list[str]]:
    """The flags of each variant to run, the combination last.

    Example:
        >>> variant_flags(["fast", "ema"], ["ema", "peak-0.8"])["combined"]
        ['--ema', '--lr', '0.8']
    """
    runs = {name: VARIANTS[name] for name in variants}
    if combined:
        runs["combined"] = [flag for name in combined for flag in VARIANTS[name]]
    return runs


def run_variant(flags: Sequence[str], common: Sequence[str], seed: int, args) -> dict:
    """Train (or read back) one variant at one seed; its test metrics and training time."""
    recipe_parser = add_config_arguments(argparse.ArgumentParser(prog="ablation --"))
    argv = ["--recipe", "fast", *common, *flags, "--seed", str(seed)]
    argv += ["--output-dir", args.output_dir]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    config = config_from_args(recipe_parser, recipe_parser.parse_args(argv))
    from keras_resnet.recipe.training import train

    result = train(config)
    return {"test_accuracy": result.test_accuracy, "minutes": result.train_seconds / 60}


def format_table(results: dict[str, list[dict]], flags: dict[str, list[str]]) -> str:
    """The markdown table of ``results`` (variant -> one result per seed).

    Example:
        >>> print(format_table({"fast": [{"test_accuracy": 0.9, "minutes": 2.0}]}, {"fast": []}))
        | variant | flags | test accuracy per seed | mean | vs fast | minutes (mean) |
        |---|---|---|---|---|---|
        | fast |  | 90.00% | 90.00% |  | 2.0 |
    """
    baseline = results.get(BASELINE)
    base_mean = statistics.mean(r["test_accuracy"] for r in baseline) if baseline else None
    lines = [
        f"| variant | flags | test accuracy per seed | mean | vs {BASELINE} | minutes (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        mean = statistics.mean(r["test_accuracy"] for r in runs)
        per_seed = ", ".join(f"{r['test_accuracy']:.2%}" for r in runs)
        delta = "" if name == BASELINE or base_mean is None else f"{mean - base_mean:+.2%}"
        minutes = statistics.mean(r["minutes"] for r in runs)
        shown = " ".join(flags[name])
        lines.append(f"| {name} | {shown} | {per_seed} | {mean:.2%} | {delta} | {minutes:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """Run every variant at every seed and return (print, and write) the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    common = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    args = build_parser().parse_args(own)
    flags = variant_flags(args.variants, args.combined)
    results = {
        name: [run_variant(variant, common, seed, args) for seed in args.seeds]
        for name, variant in flags.items()
    }
    table = format_table(results, flags)
    print(table)
    if args.table:
        args.table.write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
