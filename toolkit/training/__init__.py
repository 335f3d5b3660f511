"""Stage 3: the model, its input pipeline, training, metrics and evaluation."""
