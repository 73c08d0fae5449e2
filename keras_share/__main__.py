"""``python -m keras_share``."""

from keras_share.cli import main

main()
