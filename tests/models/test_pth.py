"""Reading torch.save archives without torch: every dtype and layout a state dict can
hold, equal to torch.load; anything else refused with its name."""

import collections
import sys

import numpy as np
import pytest
import torch

from keras_resnet.models import pth
from keras_resnet.models.torchvision import read_state_dict


def _saved(tmp_path, obj, name="weights.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _tensors():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=generator)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    return {
        "float32": torch.randn(2, 3, 4, generator=generator),
        "float64": torch.randn(3, generator=generator, dtype=torch.float64),
        "float16": torch.randn(5, generator=generator).half(),
        "bfloat16": torch.randn(7, generator=generator).bfloat16(),
        "int64": torch.arange(10),
        "int8": torch.arange(-4, 4, dtype=torch.int8),
        "uint8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3, dtype=torch.int64),
        "transposed": base.t(),  # a non-contiguous view
        "offset_view": base[2:4, 1:],  # a view into a shared storage, at an offset
        "shared": base,
        "parameter": torch.nn.Parameter(torch.ones(2, 2)),
        **{f"module.{k}": v for k, v in module.state_dict().items()},
    }


def test_every_dtype_and_layout_equals_torch_load(tmp_path):
    tensors = _tensors()
    path = _saved(tmp_path, collections.OrderedDict(tensors))
    read = pth.read_pth(path)
    assert isinstance(read, collections.OrderedDict)
    assert list(read) == list(tensors)
    for name, tensor in tensors.items():
        expected = tensor.detach()
        expected = (expected.float() if expected.dtype == torch.bfloat16 else expected).numpy()
        assert read[name].dtype == expected.dtype, name
        assert read[name].shape == expected.shape, name
        np.testing.assert_array_equal(read[name], expected, err_msg=name)


def test_a_state_dict_reads_without_torch(tmp_path, monkeypatch):
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    expected = {k: v.numpy() for k, v in module.state_dict().items()}
    path = _saved(tmp_path, module.state_dict())
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    read = read_state_dict(path)
    assert list(read) == list(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(read[name], array)


def test_a_pickled_object_other_than_tensors_is_refused_by_name(tmp_path):
    path = _saved(tmp_path, {"weight": torch.ones(1), "when": collections.Counter("ab")})
    with pytest.raises(pth.PthFormatError) as error:
        pth.read_pth(path)
    assert str(error.value) == (
        f"{path} pickles collections.Counter, which a file of tensors does not need: only "
        f"state dicts (and dicts or lists of tensors) can be read. Received: path='{path}'"
    )


def test_a_file_that_is_not_an_archive_is_refused(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"not a zip")
    assert not pth.is_torch_zip(path)
    with pytest.raises(pth.PthFormatError) as error:
        pth.read_pth(path)
    assert str(error.value) == (
        f"{path} is not a torch.save archive (a zip with a data.pkl): torch's format before "
        f"1.6 is read with torch installed, and other files not at all. Received: path='{path}'"
    )
