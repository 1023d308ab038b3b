"""``python -m keras_resnet.cli`` is the ``keras-resnet`` command."""

from keras_resnet.cli import run

if __name__ == "__main__":
    run()
