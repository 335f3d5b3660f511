"""Stage 2: which images a dataset takes, downloading them, and the dataset folder."""
