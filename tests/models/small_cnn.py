"""A model of a user's own, for the tests: one convolution, global pooling, a softmax (training.model)."""

import keras
from keras import layers


def small_cnn(input_shape, n_classes):
    """Conv 8 3x3 ReLU, global average pooling, Dense n_classes softmax."""
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(n_classes, activation="softmax", dtype="float32"),
        ],
        name="small_cnn",
    )
