"""``python -m keras_share``."""

from keras_share.launch import main

main()
