import pytest
import torch as th

from mtsb3.deepmdp.policies import (
    DeterministicTransitionModel,
    ProbabilisticTransitionModel,
    RewardDecoder,
    make_transition_model,
    transition_loss,
)


def test_transition_loss_closed_form():
    mu = th.tensor([[0.0, 1.0], [2.0, -1.0]])
    sigma = th.tensor([[1.0, 2.0], [0.5, 1.0]])
    target = th.tensor([[1.0, 1.0], [1.0, 1.0]])
    # 0.5 * ((mu - h') / sigma)^2 + log sigma, element by element, then the mean
    terms = [0.5 * 1.0 + 0.0, 0.0 + th.log(th.tensor(2.0)).item(), 0.5 * 4.0 + th.log(th.tensor(0.5)).item(), 0.5 * 4.0]
    th.testing.assert_close(transition_loss(mu, sigma, target), th.tensor(sum(terms) / 4))
    # with sigma = 1 it is half the squared error
    th.testing.assert_close(transition_loss(mu, th.ones_like(mu), target), 0.5 * ((mu - target) ** 2).mean())


def test_deterministic_model():
    model = make_transition_model("deterministic", latent_dim=6, action_dim=2, layer_width=32)
    assert type(model) is DeterministicTransitionModel
    x = th.randn(5, 8)
    mu, sigma = model(x)
    assert mu.shape == (5, 6) and th.all(sigma == 1)
    th.testing.assert_close(model.sample_prediction(x), mu)
    assert [type(m).__name__ for m in model.trunk] == ["Linear", "LayerNorm", "ReLU"]


def test_probabilistic_model_sigma_bounds():
    model = make_transition_model("probabilistic", latent_dim=4, action_dim=1, layer_width=16)
    assert isinstance(model, ProbabilisticTransitionModel)
    with th.no_grad():  # push the sigma logits to both extremes
        model.fc_sigma.bias.copy_(th.tensor([-1e4, 1e4, 0.0, 0.0]))
    _, sigma = model(th.randn(7, 5))
    th.testing.assert_close(sigma[:, 0], th.full((7,), 1e-4))
    th.testing.assert_close(sigma[:, 1], th.full((7,), 10.0))
    assert th.all(sigma >= 1e-4) and th.all(sigma <= 10.0)
    th.manual_seed(0)
    samples = th.stack([model.sample_prediction(th.zeros(1, 5))[0] for _ in range(2000)])
    mu0, sigma0 = model(th.zeros(1, 5))
    th.testing.assert_close(samples.std(0), sigma0[0], rtol=0.1, atol=1e-3)
    th.testing.assert_close(samples.mean(0), mu0[0], rtol=0, atol=0.1 * 10 + 1e-3)
    with pytest.raises(ValueError, match="min_sigma"):
        ProbabilisticTransitionModel(4, 1, min_sigma=2.0, max_sigma=1.0)


def test_make_transition_model_error():
    with pytest.raises(ValueError, match=r"one of \('deterministic', 'probabilistic'\)"):
        make_transition_model("ensemble", 4, 1)


def test_reward_decoder():
    decoder = RewardDecoder(latent_dim=6, layer_width=16)
    assert decoder(th.randn(3, 6)).shape == (3, 1)
    assert [type(m).__name__ for m in decoder.trunk] == ["Linear", "LayerNorm", "ReLU", "Linear"]
