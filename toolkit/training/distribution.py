"""Where ``train`` runs: TensorFlow's own engine for scaling out, ``tf.distribute``.

``strategy="mirrored"`` trains on every local GPU (synchronous data parallelism;
``batch_size`` is the global batch; with no GPU it mirrors over the CPU, which is how the
tests run it). ``"multi-worker"`` is ``MultiWorkerMirroredStrategy``: each machine runs the
same command with its own ``TF_CONFIG`` (the cluster and its task index) and only the
chief writes outputs and checkpoints. Keras 3 cannot yet ``fit`` under that strategy when
the cluster has more than one worker (keras-team/keras#20585, open since TF 2.16;
reproduced here with Keras 3.15 / TF 2.21), so such a TF_CONFIG is refused with a clear
error before any work; without TF_CONFIG it runs as a single worker.
"""

from __future__ import annotations

import json
import os

from ..errors import MlkitError


def make_strategy(name: str, notes: list[str]):
    """The ``tf.distribute`` strategy called ``name`` (one of ``config.STRATEGIES``); what
    the user should know about it is appended to ``notes``."""
    import tensorflow as tf

    try:
        if name == "default":
            return tf.distribute.get_strategy()
        if name == "mirrored":
            gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
            if not gpus:
                notes.append("--strategy mirrored: no GPU found, mirroring over the CPU")
            return tf.distribute.MirroredStrategy(devices=gpus or ["/cpu:0"])
        workers = cluster_size()
        if workers > 1:
            raise MlkitError(
                f"--strategy multi-worker: TF_CONFIG describes a cluster of {workers} tasks, but Keras "
                f"{_keras_version()} cannot train under tf.distribute.MultiWorkerMirroredStrategy across machines "
                "(keras-team/keras#20585). Train on one machine: --strategy mirrored uses all its GPUs")
        if workers == 0:
            notes.append("--strategy multi-worker without TF_CONFIG: running as a single worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise MlkitError(f"--strategy {name}: TensorFlow could not set it up ({exc}). For multi-worker, set "
                         "TF_CONFIG (cluster and this task) on every machine and start each in a fresh process") \
            from None


def cluster_size() -> int:
    """Tasks in TF_CONFIG's cluster (0 when TF_CONFIG is unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
        return sum(len(tasks) for job, tasks in cluster.items() if job != "evaluator")
    except (ValueError, AttributeError, TypeError) as exc:
        raise MlkitError(f"TF_CONFIG is not valid JSON with a \"cluster\" ({exc})") from None


def _keras_version() -> str:
    import keras

    return keras.__version__


def is_chief(strategy) -> bool:
    """Whether this process writes the outputs and checkpoints (always, but for the
    non-chief workers of a multi-worker cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in cluster)
