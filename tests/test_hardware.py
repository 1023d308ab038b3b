"""keras_resnet.hardware: CPU features read from injected /proc/cpuinfo text (never this
machine's CPU), the device each backend trains on, and which precisions are refused."""

import keras
import pytest

from keras_resnet import hardware
from keras_resnet.hardware import CpuInfo, parse_cpuinfo, precision_problem

# Shortened /proc/cpuinfo of the CPUs the project has met, and an Arm server's.
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma bmi2

processor\t: 1
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse2 avx avx2 fma bmi2
"""
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu avx2 fma avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
EPYC_AVX512_BF16 = "model name\t: AMD EPYC\nflags\t\t: avx2 fma avx512f avx512_bf16\n"
GRAVITON2 = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes crc32\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd40\n"

BF16_REFUSED = (
    "`precision='bf16'` would be emulated on this CPU (AMD EPYC 7B12): it lacks AVX512_BF16 "
    "and AMX-BF16, so a training step takes many times longer than in float32. Use "
    "--precision fp32, or add --allow-emulated-precision to run it anyway. "
    "Received: precision='bf16'"
)


def fp16_refused(model: str, suggestion: str) -> str:
    return (
        f"`precision='fp16'` needs a GPU: on this CPU ({model}) the backends do not train in "
        f"float16 natively, so it runs slower than float32. Use --precision {suggestion}, or "
        "add --allow-emulated-precision to run it anyway. Received: precision='fp16'"
    )


@pytest.mark.parametrize(
    "text, model, bf16",
    [
        (EPYC_AVX2, "AMD EPYC 7B12", False),
        (XEON_AMX, "Intel(R) Xeon(R) Platinum 8481C", True),
        (EPYC_AVX512_BF16, "AMD EPYC", True),
        (GRAVITON2, None, False),
        (GRAVITON3, None, True),
    ],
)
def test_native_bf16_follows_the_flags(text, model, bf16):
    info = parse_cpuinfo(text)
    if model is not None:
        assert info.model == model
    assert info.has_native_bf16() is bf16


def test_the_first_processor_flags_are_read_and_the_recorded_ones_kept():
    info = parse_cpuinfo(XEON_AMX)
    assert info.record() == {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8481C",
        "cpu_flags": [
            "avx2",
            "fma",
            "avx512f",
            "avx512_bf16",
            "avx512_fp16",
            "amx_tile",
            "amx_bf16",
        ],
    }
    assert hardware.cpu_info(EPYC_AVX2) == parse_cpuinfo(EPYC_AVX2)


def test_unknown_flags_refuse_no_bf16_but_still_refuse_fp16():
    unknown = CpuInfo("Apple M2", None)
    assert unknown.has_native_bf16() is None
    assert precision_problem("bf16", "cpu", unknown) is None
    assert precision_problem("fp16", "cpu", unknown) == fp16_refused("Apple M2", "fp32")


def test_bf16_without_the_cpu_feature_is_refused_naming_it():
    assert precision_problem("bf16", "cpu", parse_cpuinfo(EPYC_AVX2)) == BF16_REFUSED
    graviton2 = CpuInfo("Neoverse-N1", parse_cpuinfo(GRAVITON2).flags)
    assert "it lacks the BF16 extension, so" in precision_problem("bf16", "cpu", graviton2)


@pytest.mark.parametrize("text", [XEON_AMX, EPYC_AVX512_BF16, GRAVITON3])
def test_bf16_with_the_cpu_feature_passes(text):
    assert precision_problem("bf16", "cpu", parse_cpuinfo(text)) is None


def test_fp16_on_a_cpu_is_refused_suggesting_bf16_where_it_is_native():
    xeon = parse_cpuinfo(XEON_AMX)
    assert precision_problem("fp16", "cpu", xeon) == fp16_refused(xeon.model, "bf16")
    epyc = parse_cpuinfo(EPYC_AVX2)
    assert precision_problem("fp16", "cpu", epyc) == fp16_refused(epyc.model, "fp32")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_on_an_accelerator_and_in_fp32_nothing_is_refused(precision):
    epyc = parse_cpuinfo(EPYC_AVX2)
    assert precision_problem(precision, "accelerator", epyc) is None
    assert precision_problem("fp32", "cpu", epyc) is None


def test_the_device_follows_what_the_backend_reports(monkeypatch):
    """Each backend's own device report, faked as a GPU, makes the device an accelerator."""
    backend = keras.backend.backend()
    assert hardware.training_device(backend) == "cpu"  # no GPU on the test machines
    if backend == "tensorflow":
        import tensorflow as tf

        monkeypatch.setattr(
            tf.config, "list_logical_devices", lambda kind: [kind] * (kind == "GPU")
        )
    elif backend == "jax":
        import jax

        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    else:
        from keras.src.backend.torch import core

        monkeypatch.setattr(core, "get_device", lambda: "cuda")
    assert hardware.training_device(backend) == "accelerator"


def test_the_machine_record_names_the_cpu_and_its_flags():
    record = hardware.machine_record(parse_cpuinfo(EPYC_AVX2))
    assert record["cpu_model"] == "AMD EPYC 7B12"
    assert record["cpu_flags"] == ["avx2", "fma"]
    assert record["cpu_count"] >= 1
    assert hardware.describe_machine(record) == (
        f"AMD EPYC 7B12, {record['cpu_count']} CPUs, flags: avx2 fma"
    )
    assert hardware.describe_machine(CpuInfo("M2", None).record()).endswith("flags: unknown")
