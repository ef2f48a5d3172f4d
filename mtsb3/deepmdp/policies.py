"""DeepMDP latent models (mtrl/agent/deepmdp.py): transition models, reward decoder, the Gaussian transition loss, and the
policy."""

from __future__ import annotations

from typing import Any, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from mtsb3.common.pixel import weight_init
from mtsb3.sac_ae.policies import SACAEPolicy

TRANSITION_MODELS: tuple[str, ...] = ("deterministic", "probabilistic")


def transition_loss(mu: th.Tensor, sigma: th.Tensor, next_latent: th.Tensor) -> th.Tensor:
    """
    Gaussian negative log-likelihood of the next latent, without the constant (DeepMDP / HiP-BMDP, mtrl/agent/deepmdp.py):
    ``mean(0.5 * ((mu - next_latent) / sigma) ** 2 + log(sigma))``.

    :param mu: predicted mean ``(B, d)``
    :param sigma: predicted standard deviation ``(B, d)`` (ones for the deterministic model)
    :param next_latent: target latent ``(B, d)``; the caller detaches it
    :return: scalar loss
    """
    return (0.5 * ((mu - next_latent) / sigma).pow(2) + th.log(sigma)).mean()


class DeterministicTransitionModel(nn.Module):
    """
    ``fc(latent + action → width) → LayerNorm → ReLU → fc_mu(width → latent)``, with sigma = 1.

    :param latent_dim: size of the latent (encoder features, plus θ for HiP-BMDP)
    :param action_dim: action size
    :param layer_width: hidden width (512 in mtrl)
    """

    def __init__(self, latent_dim: int, action_dim: int, layer_width: int = 512):
        super().__init__()
        self.latent_dim = latent_dim
        self.trunk = nn.Sequential(nn.Linear(latent_dim + action_dim, layer_width), nn.LayerNorm(layer_width), nn.ReLU())
        self.fc_mu = nn.Linear(layer_width, latent_dim)

    def forward(self, latent_action: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """:param latent_action: ``[h, a]`` ``(B, latent + action)``; :return: ``(mu, sigma)``, each ``(B, latent)``."""
        mu = self.fc_mu(self.trunk(latent_action))
        return mu, th.ones_like(mu)

    def sample_prediction(self, latent_action: th.Tensor) -> th.Tensor:
        """:return: a predicted next latent: ``mu`` for this model."""
        return self(latent_action)[0]


class ProbabilisticTransitionModel(DeterministicTransitionModel):
    """
    The deterministic trunk plus ``fc_sigma``, squashed by a sigmoid into ``[min_sigma, max_sigma]``.

    :param latent_dim: size of the latent
    :param action_dim: action size
    :param layer_width: hidden width
    :param min_sigma: lower bound of sigma (1e-4 in mtrl)
    :param max_sigma: upper bound of sigma (10 in mtrl)
    """

    def __init__(
        self, latent_dim: int, action_dim: int, layer_width: int = 512, min_sigma: float = 1e-4, max_sigma: float = 10.0
    ):
        if not 0 < min_sigma <= max_sigma:
            raise ValueError(f"need 0 < min_sigma <= max_sigma, got min_sigma={min_sigma}, max_sigma={max_sigma}")
        super().__init__(latent_dim, action_dim, layer_width)
        self.fc_sigma = nn.Linear(layer_width, latent_dim)
        self.min_sigma, self.max_sigma = min_sigma, max_sigma

    def forward(self, latent_action: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        x = self.trunk(latent_action)
        sigma = self.min_sigma + (self.max_sigma - self.min_sigma) * th.sigmoid(self.fc_sigma(x))
        return self.fc_mu(x), sigma

    def sample_prediction(self, latent_action: th.Tensor) -> th.Tensor:
        """:return: a reparameterised sample ``mu + sigma * eps``."""
        mu, sigma = self(latent_action)
        return mu + sigma * th.randn_like(sigma)


def make_transition_model(
    kind: Literal["deterministic", "probabilistic"], latent_dim: int, action_dim: int, layer_width: int = 512
) -> DeterministicTransitionModel:
    """
    :param kind: ``"deterministic"`` or ``"probabilistic"``
    :param latent_dim: size of the latent
    :param action_dim: action size
    :param layer_width: hidden width
    :return: the model, with mtrl's init (xavier linear, zero bias)
    """
    if kind not in TRANSITION_MODELS:
        raise ValueError(f"transition_model must be one of {TRANSITION_MODELS}, got {kind!r}")
    cls = DeterministicTransitionModel if kind == "deterministic" else ProbabilisticTransitionModel
    model = cls(latent_dim, action_dim, layer_width)
    model.apply(weight_init)
    return model


class RewardDecoder(nn.Module):
    """
    ``Linear(latent → width) → LayerNorm → ReLU → Linear(width → 1)``: the reward predicted from a latent.

    :param latent_dim: size of the latent
    :param layer_width: hidden width (512 in mtrl)
    """

    def __init__(self, latent_dim: int, layer_width: int = 512):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(latent_dim, layer_width), nn.LayerNorm(layer_width), nn.ReLU(), nn.Linear(layer_width, 1)
        )
        self.apply(weight_init)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        """:param latent: ``(B, latent_dim)``; :return: ``(B, 1)``."""
        return self.trunk(latent)


class DeepMDPPolicy(SACAEPolicy):
    """
    :class:`~mtsb3.sac_ae.policies.SACAEPolicy` plus DeepMDP's latent models on the critic latent ``h``
    (``latent_dim``: encoder features plus any task conditioning, e.g. HiP-BMDP's θ):

    * ``transition_model``: ``[h, a] -> (mu, sigma)`` of the next latent (:func:`make_transition_model`);
    * ``reward_decoder``: the reward from a predicted next latent (:class:`RewardDecoder`);
    * ``transition_optimizer`` over both (mtrl's transition-model and reward-decoder optimizers, merged: Adam is
      per parameter, so one optimizer with the same settings makes the same updates).

    With state observations the encoder is the identity (mtrl's ``state_deepmdp``): no encoder optimizer and no
    decoder.

    :param transition_model: ``"deterministic"`` (mtrl's default) or ``"probabilistic"``
    :param model_layer_width: hidden width of the transition model and the reward decoder (mtrl: 512)
    :param args: the other arguments are those of :class:`~mtsb3.sac_ae.policies.SACAEPolicy`
    :param kwargs: see ``args``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        transition_model: Literal["deterministic", "probabilistic"] = "deterministic",
        model_layer_width: int = 512,
        **kwargs: Any,
    ):
        if transition_model not in TRANSITION_MODELS:
            raise ValueError(f"transition_model must be one of {TRANSITION_MODELS}, got {transition_model!r}")
        self.transition_model_kind, self.model_layer_width = transition_model, model_layer_width
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _build_networks(self) -> None:
        super()._build_networks()
        action_dim = get_action_dim(self.action_space)
        self.transition_model = make_transition_model(
            self.transition_model_kind, self.latent_dim, action_dim, self.model_layer_width
        ).to(self.device)
        self.reward_decoder = RewardDecoder(self.latent_dim, self.model_layer_width).to(self.device)

    def _build_optimizers(self, lr_schedule: Schedule) -> None:
        super()._build_optimizers(lr_schedule)
        params = [*self.transition_model.parameters(), *self.reward_decoder.parameters()]
        self.transition_optimizer = self._make_optimizer(params, lr_schedule)

    def representation_optimizers(self) -> dict[str, th.optim.Optimizer]:
        return {**super().representation_optimizers(), "transition_optimizer": self.transition_optimizer}

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(transition_model=self.transition_model_kind, model_layer_width=self.model_layer_width)
        return data


MultiInputPolicy = DeepMDPPolicy
MultiTaskPolicy = DeepMDPPolicy
