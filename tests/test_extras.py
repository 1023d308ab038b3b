"""Optional dependencies: a missing one is an ImportError naming its extra and package."""

import pytest

from keras_resnet import extras


@pytest.fixture
def missing_module(monkeypatch):
    """A module of the train extra that is not installed."""
    modules = {**extras.OPTIONAL_MODULES, "no_such_module_4711": ("train", "no-such-package")}
    monkeypatch.setattr(extras, "OPTIONAL_MODULES", modules)
    return "no_such_module_4711"


def test_check_extra_names_the_missing_package_and_the_extra(missing_module):
    with pytest.raises(ImportError, match=r"\[train\]'. Received: no-such-package not installed$"):
        extras.check_extra("train", "Training")


def test_check_extra_includes_the_extras_an_extra_installs(missing_module):
    with pytest.raises(ImportError, match="no-such-package"):
        extras.check_extra("tune", "A search")


def test_check_extra_skips_the_modules_a_purpose_does_without(missing_module):
    extras.check_extra("train", "Training from a folder", without=(missing_module,))


def test_require_names_the_extra_of_a_missing_module(missing_module):
    with pytest.raises(ImportError, match=r"pip install 'keras3-resnet\[train\]'"):
        extras.require(missing_module, "Something")
