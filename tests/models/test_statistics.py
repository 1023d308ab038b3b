"""Multiply-accumulate counts against torchvision's table, and the model table."""

import pytest
from conftest import imagenet_model

import keras_resnet
from keras_resnet.models.statistics import format_markdown, model_table, multiply_accumulates

# torchvision's model documentation, "GFLOPS" column (multiply-accumulates, 224x224).
TORCHVISION_GMACS = {
    "resnet18": 1.81,
    "resnet34": 3.66,
    "resnet50": 4.09,
    "resnet101": 7.80,
    "resnet152": 11.51,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_multiply_accumulates_match_torchvision(name):
    gmacs = multiply_accumulates(imagenet_model(name)) / 1e9
    assert round(gmacs, 2) == TORCHVISION_GMACS[name]


def test_multiply_accumulates_by_hand_on_a_tiny_network():
    spec = keras_resnet.ResNetSpec("basic", (1,), (4,), stem="cifar", input_size=8)
    model = keras_resnet.build_resnet(spec, num_classes=3)
    stem = 8 * 8 * 4 * (3 * 3 * 3)
    block = 2 * 8 * 8 * 4 * (3 * 3 * 4)
    assert multiply_accumulates(model) == stem + block + 4 * 3


def test_model_table_rows():
    rows = model_table(names=["resnet20", "resnet18", "resnet110", "resnet50d", "wrn16_8"])
    by_name = {row["name"]: row for row in rows}
    assert by_name["resnet20"]["parameters"] == 269_722
    assert by_name["resnet18"]["stem"] == "cifar"
    assert by_name["resnet50d"]["stem"] == "deep"
    assert by_name["wrn16_8"]["depth"] == 16
    assert by_name["wrn16_8"]["block"] == "pre-act basic"
    table = format_markdown(rows)
    assert table.count("\n") == len(rows) + 1
    assert "| resnet110 | 110 | basic | 18-18-18 | zero_pad | cifar | 1,727,962 |" in table
