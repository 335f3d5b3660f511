"""Strong training-time augmentation for ``--quality best``: random resized crops,
horizontal flips and colour jitter, on batches of 0..255 pixels.

Training only: none of it is part of a saved model. The crop follows the usual
"random resized crop" recipe (Szegedy et al. 2015, "Going deeper with convolutions", the
Inception training set-up; torchvision's RandomResizedCrop): a box covering a random
fraction ``scale`` of the image's area with a random aspect ratio (log-uniform in
``ratio``), resized back to the input size. The colour jitter is Keras' own layers.
"""

from __future__ import annotations

import math

# Fixed before any benchmark (not tuned on the photos that judge them): a milder area
# range than ImageNet's (0.08, 1), since a few hundred photos train for a few epochs only.
CROP_SCALE = (0.25, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
BRIGHTNESS = 0.2    # +-20 % of the value range
CONTRAST = 0.2      # contrast factor in [0.8, 1.2]
SATURATION = 0.3    # saturation factor in [0.7, 1.3]


def _layer_classes():
    import keras
    import tensorflow as tf

    class RandomResizedCrop(keras.layers.Layer):
        """A random box (area fraction in ``scale``, aspect ratio in ``ratio``) of each
        image, resized to ``size`` x ``size`` (bilinear). Identity when not training."""

        def __init__(self, size: int, scale=CROP_SCALE, ratio=CROP_RATIO, seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.size, self.scale, self.ratio, self.seed = int(size), tuple(scale), tuple(ratio), seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=True):
            if not training:
                return images
            n = tf.shape(images)[0]
            area = keras.random.uniform((n,), self.scale[0], self.scale[1], seed=self.seed_generator)
            log_r = keras.random.uniform((n,), math.log(self.ratio[0]), math.log(self.ratio[1]),
                                         seed=self.seed_generator)
            aspect = tf.exp(log_r)
            # box sides as fractions of the image's height and width (square inputs)
            w = tf.minimum(tf.sqrt(area * aspect), 1.0)
            h = tf.minimum(tf.sqrt(area / aspect), 1.0)
            y0 = keras.random.uniform((n,), 0.0, 1.0, seed=self.seed_generator) * (1.0 - h)
            x0 = keras.random.uniform((n,), 0.0, 1.0, seed=self.seed_generator) * (1.0 - w)
            boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
            out = tf.image.crop_and_resize(images, boxes, tf.range(n), [self.size, self.size], method="bilinear")
            return tf.clip_by_value(out, 0.0, 255.0)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.size, self.size, input_shape[-1])

        def get_config(self):
            return {**super().get_config(), "size": self.size, "scale": self.scale, "ratio": self.ratio,
                    "seed": self.seed}

    class RandomSaturation(keras.layers.Layer):
        """Each image blended with its own grey version (ITU-R BT.601 luma) by a random
        factor in [1 - amount, 1 + amount], clipped to 0..255. (Keras 3.15's
        RandomSaturation with value_range=(0, 255) returns negative pixels.)"""

        def __init__(self, amount: float, seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.amount, self.seed = float(amount), seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=True):
            if not training:
                return images
            n = tf.shape(images)[0]
            factor = keras.random.uniform((n, 1, 1, 1), 1.0 - self.amount, 1.0 + self.amount,
                                          seed=self.seed_generator)
            grey = tf.reduce_sum(images * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
            return tf.clip_by_value(grey + factor * (images - grey), 0.0, 255.0)

        def get_config(self):
            return {**super().get_config(), "amount": self.amount, "seed": self.seed}

    return RandomResizedCrop, RandomSaturation


def random_resized_crop(size: int, seed: int | None = None, scale=CROP_SCALE, ratio=CROP_RATIO):
    return _layer_classes()[0](size, scale=scale, ratio=ratio, seed=seed, name="random_resized_crop")


def strong_augmentation(size: int, seed: int = 0):
    """Random resized crop, horizontal flip, brightness / contrast / saturation jitter, on
    float 0..255 batches of ``size`` x ``size`` images (call with ``training=True``)."""
    import keras

    return keras.Sequential([
        random_resized_crop(size, seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
        keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0, 255), seed=seed + 2),
        keras.layers.RandomContrast(CONTRAST, value_range=(0, 255), seed=seed + 3),
        _layer_classes()[1](SATURATION, seed=seed + 4, name="random_saturation"),
    ], name="strong_augmentation")
