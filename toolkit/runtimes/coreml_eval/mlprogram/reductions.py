"""MIL reductions: ``reduce_<kind>`` over ``axes`` (all axes when absent), ``keep_dims``
optional, for every kind in ``ops.REDUCTIONS`` (mean, sum, max, min, prod, l1_norm,
l2_norm, sum_square, log_sum, log_sum_exp), per coremltools' op definitions."""

from __future__ import annotations

from .. import ops
from .registry import OPS


def _reduce_op(kind):
    def run(a):
        axes = a.ints("axes")
        return ops.reduce(kind, a.f32(), None if axes is None else tuple(axes),
                          bool(a.scalar("keep_dims", False)))
    return run


for _kind in ops.REDUCTIONS:
    OPS["reduce_" + _kind] = _reduce_op(_kind)
