"""The applications' datasets: bundled offline copies and the loaders that read them."""
