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
SATURATION = 0.15   # Keras' factor around 0.5 (no change): [0.35, 0.65]


def _crop_layer_class():
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

    return RandomResizedCrop


def random_resized_crop(size: int, seed: int | None = None, scale=CROP_SCALE, ratio=CROP_RATIO):
    return _crop_layer_class()(size, scale=scale, ratio=ratio, seed=seed, name="random_resized_crop")


def strong_augmentation(size: int, seed: int = 0):
    """Random resized crop, horizontal flip, brightness / contrast / saturation jitter, on
    float 0..255 batches of ``size`` x ``size`` images (call with ``training=True``)."""
    import keras

    return keras.Sequential([
        random_resized_crop(size, seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
        keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0, 255), seed=seed + 2),
        keras.layers.RandomContrast(CONTRAST, value_range=(0, 255), seed=seed + 3),
        keras.layers.RandomSaturation((0.5 - SATURATION, 0.5 + SATURATION), value_range=(0, 255), seed=seed + 4),
    ], name="strong_augmentation")
