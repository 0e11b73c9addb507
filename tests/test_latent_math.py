"""slerp and text-vector parsing."""
import numpy as np
import pytest

from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import format_vector, parse_vector, slerp


def test_slerp_orthogonal_unit_vectors_midpoint():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(slerp(a, b, 0.5), (a + b) / np.sqrt(2), atol=1e-12)


def test_slerp_known_angles_and_constant_norm():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    t = np.array([1 / 3, 2 / 3])
    expected = 2 * np.stack([np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)], axis=1)
    np.testing.assert_allclose(slerp(a, b, t), expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, np.linspace(0, 1, 7)), axis=1), 2.0)


def test_slerp_endpoints_are_exact_and_vectorised():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100).astype(np.float32), rng.standard_normal(100).astype(np.float32)
    path = slerp(a, b, np.linspace(0, 1, 11))
    assert path.shape == (11, 100)
    assert np.array_equal(path[0], a.astype(np.float64))
    assert np.array_equal(path[-1], b.astype(np.float64))
    assert slerp(a, b, np.zeros((2, 3))).shape == (2, 3, 100)


@pytest.mark.parametrize("b", [np.array([2.0, 4.0]), np.array([-1.0, -2.0]), np.array([0.0, 0.0])])
def test_slerp_linear_fallback_when_parallel_antiparallel_or_zero(b):
    a = np.array([1.0, 2.0])
    t = np.array([0.25, 0.5])
    np.testing.assert_allclose(slerp(a, b, t), (1 - t[:, None]) * a + t[:, None] * b)
    assert np.all(np.isfinite(slerp(a, b, t)))


@pytest.mark.parametrize("text", [
    "1 2 3.5 -4",
    "1, 2, 3.5, -4",
    "[1,2,\n3.5 -4]",
    "[[ 1.  2.   3.5 -4. ]]",
    "array([ 1.,  2.,  3.5, -4.], dtype=float32)",
    "(1; 2; 3.5e0; -4)",
])
def test_parse_vector_accepts_pasted_formats(text):
    vector = parse_vector(text, 4)
    assert vector.dtype == np.float32
    np.testing.assert_array_equal(vector, [1, 2, 3.5, -4])


def test_parse_vector_round_trips_format_vector():
    vector = np.random.default_rng(1).standard_normal(100).astype(np.float32)
    np.testing.assert_array_equal(parse_vector(format_vector(vector), 100), vector)


@pytest.mark.parametrize("text, expected_len, message", [
    (" ".join(["0.5"] * 99), 100, "z has 99 numbers, expected 100"),
    ("1 2 3 4 5 6 abc 8", 8, "z: 'abc' at position 7 is not a number"),
    ("1 nan 3", 3, "z: 'nan' at position 2 is not a finite number"),
    ("1 2 -inf", 3, "z: '-inf' at position 3 is not a finite number"),
    ("", 3, "z has 0 numbers, expected 3"),
])
def test_parse_vector_rejects_with_clear_message(text, expected_len, message):
    with pytest.raises(DataError) as error:
        parse_vector(text, expected_len)
    assert str(error.value) == message


def test_parse_vector_names_the_vector():
    with pytest.raises(DataError, match=r"^sink1 has 2 numbers, expected 3$"):
        parse_vector("1 2", 3, what="sink1")
