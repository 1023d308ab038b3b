"""``python -m keras_resnet.cli`` is the ``keras-resnet`` command."""

from keras_resnet.cli import run

run()
