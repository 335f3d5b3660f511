"""The evaluator's own error: a layer or op it has no semantics for."""

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
