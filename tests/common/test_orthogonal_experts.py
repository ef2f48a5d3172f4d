"""MOORE's layer: batched Gram-Schmidt and the mixture of orthogonal experts (mtsb3.common.orthogonal_experts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from mtsb3.common.orthogonal_experts import MixtureOfOrthogonalExperts, gram_schmidt

th.set_num_threads(1)

N_TASKS, OBS_DIM = 5, 7
SPACE = spaces.Dict({"env_obs": spaces.Box(-1, 1, (OBS_DIM,), np.float32), "task_obs": spaces.Discrete(N_TASKS)})


def _reference_gram_schmidt(vectors: np.ndarray) -> np.ndarray:
    """Textbook classical Gram-Schmidt of one sample's ``(k, d)`` rows, in float64, one vector at a time."""
    basis: list[np.ndarray] = []
    for v in vectors.astype(np.float64):
        w = v - sum(np.dot(v, q) * q for q in basis) if basis else v
        basis.append(w / np.linalg.norm(w))
    return np.stack(basis)


def _batch(batch: int = 16, seed: int = 0) -> dict[str, th.Tensor]:
    gen = th.Generator().manual_seed(seed)
    obs = th.rand(batch, OBS_DIM, generator=gen) * 2 - 1
    return {"env_obs": obs, "task_obs": th.nn.functional.one_hot(th.arange(batch) % N_TASKS, N_TASKS).float()}


@pytest.mark.parametrize("k", [1, 4, 6])
def test_gram_schmidt_is_orthonormal_per_sample(k):
    vectors = th.randn(k, 256, 400, generator=th.Generator().manual_seed(k))
    basis = gram_schmidt(vectors)
    assert basis.shape == (k, 256, 400)
    gram = th.einsum("ibd,jbd->bij", basis, basis)  # Q^T Q of every sample
    th.testing.assert_close(gram, th.eye(k).expand(256, k, k), atol=1e-5, rtol=0)


def test_gram_schmidt_equals_the_unbatched_reference_and_signed_qr():
    vectors = th.randn(4, 32, 50, generator=th.Generator().manual_seed(0))
    basis = gram_schmidt(vectors)
    reference = np.stack([_reference_gram_schmidt(vectors[:, b].numpy()) for b in range(32)], axis=1)
    np.testing.assert_allclose(basis.numpy(), reference, atol=2e-6)
    # Householder QR of (B, d, k) gives the same basis once each column has the sign that makes diag(R) positive
    q, r = th.linalg.qr(vectors.permute(1, 2, 0).double())
    q = q * th.sign(th.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(1)
    np.testing.assert_allclose(basis.numpy(), q.permute(2, 0, 1).numpy(), atol=2e-6)


def test_gram_schmidt_keeps_the_first_direction_and_survives_dependent_vectors():
    v = th.randn(1, 3, 8)
    dependent = th.cat([v, 2 * v, th.zeros(1, 3, 8)])  # a repeated direction and a zero vector
    basis = gram_schmidt(dependent)
    assert th.isfinite(basis).all()  # the authors' division by the bare norm gives NaN for the zero vector
    th.testing.assert_close(basis[0], v[0] / v[0].norm(dim=-1, keepdim=True))
    assert (basis[1].norm(dim=-1) <= 1 + 1e-6).all()  # rounding noise, never blown up past unit length
    assert th.equal(basis[2], th.zeros(3, 8))


def test_extractor_computes_the_task_weighted_orthogonal_mixture():
    th.manual_seed(0)
    extractor = MixtureOfOrthogonalExperts(SPACE, n_experts=3, net_arch=[16], features_dim=8)
    obs = _batch()
    features = extractor(obs)
    assert features.shape == (16, 8) and extractor.features_dim == 8
    task = th.arange(16) % N_TASKS
    experts = extractor.experts(obs["env_obs"])  # (k, B, d)
    assert experts.shape == (3, 16, 8)
    basis = th.from_numpy(np.stack([_reference_gram_schmidt(experts[:, b].detach().numpy()) for b in range(16)], 1))
    # the authors' task encoder: a bias-free linear map of the one-hot
    weights = th.nn.functional.one_hot(task, N_TASKS).float() @ extractor.task_weights.weight
    expected = th.tanh(th.einsum("bk,kbd->bd", weights.double(), basis))
    np.testing.assert_allclose(features.detach().numpy(), expected.detach().numpy(), atol=1e-5)


def test_each_sample_is_orthogonalised_on_its_own():
    th.manual_seed(0)
    extractor = MixtureOfOrthogonalExperts(SPACE, n_experts=4, net_arch=[16], features_dim=8)
    obs = _batch(12)
    whole = extractor(obs)
    one_by_one = th.cat([extractor({key: value[i : i + 1] for key, value in obs.items()}) for i in range(12)])
    th.testing.assert_close(whole, one_by_one)
    basis = extractor.orthogonal_representations(obs["env_obs"])
    th.testing.assert_close(th.einsum("ibd,jbd->bij", basis, basis), th.eye(4).expand(12, 4, 4), atol=1e-5, rtol=0)


def test_gradients_reach_the_experts_and_the_task_weights():
    th.manual_seed(0)
    extractor = MixtureOfOrthogonalExperts(SPACE, n_experts=3, net_arch=[16], features_dim=8)
    extractor(_batch()).pow(2).sum().backward()
    for name, param in extractor.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_task_encoding_is_mapped_to_the_weights():
    th.manual_seed(0)
    extractor = MixtureOfOrthogonalExperts(SPACE, n_experts=3, net_arch=[16], features_dim=8, task_encoding_dim=6)
    obs, encoding = _batch(), th.randn(16, 6)
    task = th.arange(16) % N_TASKS
    th.testing.assert_close(extractor.expert_weights(task, encoding), encoding @ extractor.task_weights.weight.T)
    assert extractor(obs, encoding).shape == (16, 8)
    with pytest.raises(ValueError, match="expected a task encoding of size 6"):
        extractor(obs, th.randn(16, 5))
    own = MixtureOfOrthogonalExperts(SPACE, n_experts=3, net_arch=[16], features_dim=8, task_encoder_kwargs=dict(output_dim=4))
    assert own.task_encoder is not None and own(obs).shape == (16, 8)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_bad_expert_counts_raise(bad):
    with pytest.raises(ValueError, match=rf"n_experts must be an integer >= 1, got {bad!r}"):
        MixtureOfOrthogonalExperts(SPACE, n_experts=bad)


def test_more_experts_than_representation_dims_raise():
    with pytest.raises(ValueError, match=r"n_experts=9 orthonormal representations need features_dim >= n_experts, got "):
        MixtureOfOrthogonalExperts(SPACE, n_experts=9, features_dim=8)


def test_a_box_task_space_raises():
    space = spaces.Dict({"env_obs": SPACE["env_obs"], "task_obs": spaces.Box(0, 1, (2,), np.float32)})
    with pytest.raises(ValueError, match="needs a Discrete task_obs"):
        MixtureOfOrthogonalExperts(space)
