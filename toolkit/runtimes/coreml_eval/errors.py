"""The evaluator's own error: a layer or op it has no semantics for (and the internal
signal the layer / op modules raise for it)."""

from __future__ import annotations

from ...errors import MlkitError


class UnsupportedOpError(MlkitError):
    """The model uses a NeuralNetwork layer or MIL op the reference evaluator cannot run.

    ``op_type`` is the layer / op type as the spec names it (``"deconvolution"``,
    ``"gather"``), ``op_name`` the layer's or op's own name in the file, ``format`` is
    ``"neuralnetwork"`` or ``"mlprogram"``. Raised by ``load`` before anything runs, so an
    unknown op is never silently skipped."""

    def __init__(self, op_type: str, op_name: str, format: str, detail: str = "",
                 others: int = 0):
        self.op_type = op_type
        self.op_name = op_name
        self.format = format
        kind = "layer" if format == "neuralnetwork" else "op"
        msg = (f"the Core ML reference evaluator does not support the {format} {kind} "
               f"'{op_type}' (named '{op_name}')")
        if detail:
            msg += f": {detail}"
        if others:
            msg += f"; {others} more unsupported {kind}(s) follow it"
        msg += (". Validate this file with Core ML itself on macOS, or export the model with "
                "layers the evaluator knows (toolkit/runtimes/coreml_eval lists them).")
        super().__init__(msg)


class Unsupported(Exception):
    """Internal: raised by a layer builder or an op while the graph compiles or runs; the
    graph turns it into an ``UnsupportedOpError`` naming the layer / op. ``detail`` says
    what is missing; ``op_type``, when given, names the layer type more precisely than the
    spec's own (``"pooling (L2)"``)."""

    def __init__(self, detail: str = "", op_type: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.op_type = op_type
