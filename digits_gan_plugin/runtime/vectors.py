"""Input vectors of generators: z noise plus an optional one-hot class part."""
import numpy as np


def sample_z(count, z_dim, rng, distribution="uniform"):
    """float32 count x z_dim noise: U(-1, 1) ('uniform') or N(0, 1) ('normal')."""
    if distribution == "normal":
        return rng.standard_normal((count, z_dim)).astype(np.float32)
    return rng.uniform(-1.0, 1.0, (count, z_dim)).astype(np.float32)


def with_labels(z, labels, y_dim):
    """Concatenate z (N x z_dim) with the one-hot of int `labels` (N,) over y_dim
    classes -> float32 N x (z_dim + y_dim). y_dim 0 returns z unchanged."""
    if not y_dim:
        return np.asarray(z, np.float32)
    return np.concatenate([z, np.eye(y_dim, dtype=np.float32)[labels]], axis=1)


def sample_grid_vectors(facts, seed, rows=8):
    """Fixed vectors for the per-epoch sample grid -> (vectors N x D, (rows, cols)).

    Conditional: one column per class, each row one z shared across its columns.
    Unconditional: rows x rows different z.
    """
    rng = np.random.default_rng(seed)
    if facts.y_dim:
        cols = facts.y_dim
        z = np.repeat(sample_z(rows, facts.z_dim, rng, facts.z_distribution), cols, axis=0)
        labels = np.tile(np.arange(cols), rows)
        return with_labels(z, labels, facts.y_dim), (rows, cols)
    return sample_z(rows * rows, facts.z_dim, rng, facts.z_distribution), (rows, rows)
