"""Training batches whose order depends on the epoch number alone, so that a resumed run
sees exactly the batches an uninterrupted one would have seen.

``tf.data``'s ``shuffle(reshuffle_each_iteration=True)`` (and Keras' own ``shuffle=True``)
draw each epoch's order from a random state that starts afresh in every process: a run
resumed at epoch 3 would replay the order of epoch 1. Here epoch ``e`` of a run seeded
``seed`` is always the same permutation, whichever epoch the run started from.
"""

from __future__ import annotations

import math


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch (0-based) of a run seeded ``seed``."""
    return (seed * 100_003 + epoch) % (2 ** 31 - 1)


def epoch_batches(ds, n: int, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """``ds`` (finite, unbatched, ``n`` elements; cache it first if it is costly) as the
    batches of epochs ``first_epoch`` .. ``epochs - 1``, one after another: each epoch a
    full pass in its own seeded order, its last batch possibly smaller. Give Keras' ``fit``
    ``steps_per_epoch=steps(n, batch_size)`` so that it keeps one iterator across epochs."""
    parts = [ds.shuffle(max(1, n), seed=epoch_seed(seed, e), reshuffle_each_iteration=False).batch(batch_size)
             for e in range(first_epoch, max(epochs, first_epoch + 1))]
    out = parts[0]
    for part in parts[1:]:
        out = out.concatenate(part)
    return out


def steps(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
