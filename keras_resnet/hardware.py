"""The machine a run trains on: the CPU's model and flags, the device the backend uses, and
whether a precision runs natively there.

One place for these facts: the recipe checks ``--precision`` against them before training,
and the run folder and the benchmark record them beside every speed figure.

CPU features come from ``/proc/cpuinfo`` on Linux (the ``flags`` line on x86, ``Features`` on
Arm). Other systems do not expose them without a third-party package, so there the flags are
unknown (``None``) and no precision is refused for lack of them: a check that cannot read
the hardware must not stop a run that may well be native (every Apple-silicon Mac from the
M2 on has bf16, for one); ``precision_problem`` then says nothing and the speed is the user's
to measure.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# CPU flags that give native bfloat16 matrix multiplies, as /proc/cpuinfo names them:
# x86 AVX512-BF16 and AMX-BF16, Arm's BF16 extension (``Features: ... bf16``).
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# What a message says is missing: on Arm (its flags have ``asimd``) and on x86.
MISSING_BF16 = {"arm": "the BF16 extension", "x86": "AVX512_BF16 and AMX-BF16"}
# The flags a machine record keeps: those that decide the speed of a training step.
RECORDED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_fp16",
    "asimd",
    "sve",
    "bf16",
)
ACCELERATOR = "accelerator"
CPU = "cpu"
# The command-line flag that runs an emulated precision anyway (TrainConfig field
# ``allow_emulated_precision``).
OVERRIDE_FLAG = "--allow-emulated-precision"


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and feature flags; ``flags`` is None where they are unknown.

    Example:
        >>> info = parse_cpuinfo("model name : AMD EPYC\\nflags : fpu avx2 fma\\n")
        >>> info.model, sorted(info.flags)
        ('AMD EPYC', ['avx2', 'fma', 'fpu'])
    """

    model: str
    flags: frozenset[str] | None

    def has_native_bf16(self) -> bool | None:
        """True or False from the flags; None where the flags are unknown.

        Example:
            >>> CpuInfo("x", frozenset({"avx2"})).has_native_bf16()
            False
        """
        if self.flags is None:
            return None
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def is_arm(self) -> bool:
        """Whether the flags are an Arm CPU's (``asimd``, Advanced SIMD, is in every one)."""
        return self.flags is not None and "asimd" in self.flags

    def record(self) -> dict:
        """The model and the speed-deciding flags present (``RECORDED_FLAGS``), for JSON.

        Example:
            >>> CpuInfo("AMD EPYC", frozenset({"avx2", "fpu"})).record()
            {'cpu_model': 'AMD EPYC', 'cpu_flags': ['avx2']}
        """
        flags = None if self.flags is None else [f for f in RECORDED_FLAGS if f in self.flags]
        return {"cpu_model": self.model, "cpu_flags": flags}


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's model and flags in ``/proc/cpuinfo`` text (x86 or Arm).

    Example:
        >>> parse_cpuinfo("Features : fp asimd bf16\\nCPU part : 0xd40\\n").has_native_bf16()
        True
    """
    model, flags = None, None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and flags is None:
            flags = frozenset(value.split())
    return CpuInfo(model or platform.processor() or platform.machine() or "unknown", flags)


def cpu_info(cpuinfo_text: str | None = None) -> CpuInfo:
    """This machine's CPU: from ``cpuinfo_text`` if given, else ``/proc/cpuinfo`` on Linux;
    elsewhere the model from ``platform`` and unknown flags (see the module docstring).

    Example:
        >>> cpu_info("model name : Intel Xeon\\nflags : avx512_bf16\\n").has_native_bf16()
        True
    """
    if cpuinfo_text is None and sys.platform.startswith("linux"):
        try:
            cpuinfo_text = CPUINFO.read_text()
        except OSError:
            cpuinfo_text = None
    if cpuinfo_text is not None:
        return parse_cpuinfo(cpuinfo_text)
    return CpuInfo(platform.processor() or platform.machine() or "unknown", None)


def training_device(backend: str | None = None) -> str:
    """``"accelerator"`` where the Keras backend places its tensors on a GPU (or TPU, MPS),
    else ``"cpu"``. Imports the backend, so call it only where training is about to start.

    Example:
        >>> training_device("numpy")
        'cpu'
    """
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
    elif backend == "jax":
        import jax

        found = jax.default_backend() != "cpu"
    elif backend == "torch":
        try:  # Keras's own choice (it honours KERAS_TORCH_DEVICE); private, hence the fallback
            from keras.src.backend.torch.core import get_device
        except ImportError:
            import torch

            found = torch.cuda.is_available()
        else:
            found = not str(get_device()).startswith("cpu")
    else:
        found = False
    return ACCELERATOR if found else CPU


def precision_problem(precision: str, device: str, cpu: CpuInfo) -> str | None:
    """Why ``precision`` would be emulated on ``device`` (one sentence for the user), or None.

    On an accelerator every precision runs. On a CPU, bf16 needs one of ``BF16_FLAGS``
    (where the flags are unknown it is allowed); fp16 is refused whatever the flags: the
    backends' CPU kernels do not train in float16 natively (torch's float16 convolutions
    run several times slower than float32 on the CPUs here), and its loss scaling is
    there for GPUs.

    Example:
        >>> print(precision_problem("bf16", "cpu", CpuInfo("AMD EPYC", frozenset({"avx2"}))))
        ... # doctest: +NORMALIZE_WHITESPACE
        `precision='bf16'` would be emulated on this CPU (AMD EPYC): it lacks AVX512_BF16
        and AMX-BF16, so a training step takes many times longer than in float32.
        Use --precision fp32, or add --allow-emulated-precision to run it anyway.
        Received: precision='bf16'
    """
    if device != CPU or precision == "fp32":
        return None
    if precision == "bf16":
        if cpu.has_native_bf16() is not False:
            return None
        missing = MISSING_BF16["arm" if cpu.is_arm else "x86"]
        return (
            f"`precision='bf16'` would be emulated on this CPU ({cpu.model}): it lacks "
            f"{missing}, so a training step takes many times longer than in "
            f"float32. Use --precision fp32, or add {OVERRIDE_FLAG} to run it anyway. "
            "Received: precision='bf16'"
        )
    suggestion = "bf16" if cpu.has_native_bf16() else "fp32"
    return (
        f"`precision='fp16'` needs a GPU: on this CPU ({cpu.model}) the backends do not "
        "train in float16 natively, so it runs slower than float32. Use --precision "
        f"{suggestion}, or add {OVERRIDE_FLAG} to run it anyway. "
        "Received: precision='fp16'"
    )


def machine_record(cpu: CpuInfo | None = None) -> dict:
    """What a speed figure is measured on: the CPU's model and speed-deciding flags, the
    core count, the architecture and the system, ready for JSON.

    Example:
        >>> machine_record(CpuInfo("AMD EPYC", frozenset({"avx2"})))["cpu_flags"]
        ['avx2']
    """
    cpu = cpu or cpu_info()
    return {
        **cpu.record(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
    }


def describe_machine(record: dict) -> str:
    """One line for a ``machine_record``: the CPU model, the core count and the flags kept.

    Example:
        >>> describe_machine({"cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "fma"],
        ...                   "cpu_count": 2})
        'AMD EPYC, 2 CPUs, flags: avx2 fma'
    """
    flags = record.get("cpu_flags")
    listed = "unknown" if flags is None else (" ".join(flags) or "none of those recorded")
    return f"{record.get('cpu_model')}, {record.get('cpu_count')} CPUs, flags: {listed}"
