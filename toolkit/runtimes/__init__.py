"""Running a model in any format: Keras, Core ML (or the reference evaluator), LiteRT."""
