"""
How the multi-task actor and critic see the task: per-task output heads run as one batched matmul
(:class:`TaskHeads`), the input of their MLPs built from the observation (:class:`TaskConditioning`), and which
combinations of these options are valid (:func:`check_task_options`).
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from mtsb3.common.experts import BatchedMLP
from mtsb3.common.task import TaskBatch, TaskObs, apply_by_task, n_tasks_of
from mtsb3.common.task_encoder import TaskEncoder


def check_task_options(
    observation_space: spaces.Space,
    *,
    use_sde: bool = False,
    multi_head: bool = False,
    head_net_arch: list[int] | None = None,
    use_task_encoder: bool = False,
    task_encoder_kwargs: dict[str, Any] | None = None,
    condition_features_extractor_on_task: bool = False,
    concat_task_one_hot: bool = False,
    train_task_encoder_with_actor: bool = False,
    custom_task_heads: bool = False,
    soft_modularization_trunk: bool = False,
    concat_task_encoding: bool = True,
) -> int | None:
    """
    The one check of the multi-task options of :class:`~mtsb3.mtsac.policies.MTSACPolicy` (see there): a combination
    either builds what it says or raises, naming the options that conflict; no option is ignored.
    ``concat_task_encoding`` is the exception by design: it says how a task encoder's output is used, so it has no
    effect without one (its default is ``True``).

    :param observation_space: the policy's observation space
    :param custom_task_heads: whether ``task_heads_class`` or ``task_heads_kwargs`` are given
    :param soft_modularization_trunk: whether the actor or the critic has ``trunk="soft_modularization"``
    :param concat_task_encoding: the policy option (the Soft Modularization trunk reads the task encoding there)
    :return: the number of tasks when an option needs the task index, else ``None``
    :raises ValueError: for options that need another one, or that conflict, or that need a ``Discrete`` task_obs
        the observation space does not have
    """
    requirements = (  # (option on, what it needs, message)
        (condition_features_extractor_on_task, use_task_encoder, "condition_features_extractor_on_task=True needs "),
        (train_task_encoder_with_actor, use_task_encoder, "train_task_encoder_with_actor=True needs "),
        (bool(task_encoder_kwargs), use_task_encoder, f"task_encoder_kwargs={task_encoder_kwargs!r} needs "),
    )
    for on, needed, message in requirements:
        if on and not needed:
            raise ValueError(message + "use_task_encoder=True (it uses the policy's task encoder, built only then)")
    if custom_task_heads and not multi_head:
        raise ValueError(
            "task_heads_class/task_heads_kwargs build the per-task heads: they need multi_head=True or disjoint_policy=True"
        )
    if head_net_arch and not multi_head:
        raise ValueError(f"head_net_arch={head_net_arch!r} needs multi_head=True (it sizes the per-task output heads)")
    if soft_modularization_trunk:
        # the trunk routes on [features | task encoding] and outputs the actor's mean and log std (mtrl's SoftModularizedMLP)
        if not (use_task_encoder and concat_task_encoding) or concat_task_one_hot:
            raise ValueError(
                "trunk='soft_modularization' reads the task encoding after the features: it needs use_task_encoder=True "
                "and concat_task_encoding=True, and no concat_task_one_hot"
            )
        if multi_head or use_sde:
            raise ValueError("trunk='soft_modularization' is the whole network: no multi_head heads and no use_sde")
    if multi_head and use_sde:
        raise ValueError("multi_head=True is not supported with use_sde=True (gSDE has no per-task noise heads)")
    options = {"multi_head": multi_head, "use_task_encoder": use_task_encoder, "concat_task_one_hot": concat_task_one_hot}
    needs_tasks = [f"{name}=True" for name, on in options.items() if on]
    return n_tasks_of(observation_space, " and ".join(needs_tasks)) if needs_tasks else None


class TaskHeads(nn.Module):
    """
    One small MLP per task (and per group, e.g. per Q-network), each sample going through its own task's head.

    The samples are scattered into a padded ``(groups·tasks, slots, in)`` block
    (:func:`~mtsb3.common.task.to_task_blocks`) and run through a :class:`~mtsb3.common.experts.BatchedMLP` as one
    batched matmul per layer: the cost is about one head on the whole batch (exactly that with a task-balanced
    batch), never ``n_tasks`` times it, and there is no loop over tasks.
    mtrl instead runs every head on every sample and masks (mtrl/agent/components/actor.py), which costs ``n_tasks`` times
    more.

    :param n_tasks: number of tasks
    :param in_features: input size
    :param net_arch: hidden sizes of each head (``[]``: one linear layer per task)
    :param out_features: output size
    :param activation_fn: activation between layers
    :param n_groups: number of independent sets of heads that read a ``(n_groups, batch, in)`` input
    """

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        net_arch: list[int],
        out_features: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        n_groups: int = 1,
    ):
        super().__init__()
        self.n_tasks, self.n_groups, self.out_features = n_tasks, n_groups, out_features
        self.mlp = BatchedMLP(n_groups * n_tasks, in_features, net_arch, out_features, activation_fn)

    def forward(self, x: th.Tensor, task: TaskBatch | th.Tensor) -> th.Tensor:
        """
        :param x: ``(batch, in)`` (one group) or ``(n_groups, batch, in)``
        :param task: the task of each sample, a :class:`~mtsb3.common.task.TaskBatch` (whose routing is shared with
            the other networks of the step) or ``(batch,)`` long task indices
        :return: ``(batch, out)`` or ``(n_groups, batch, out)``, matching ``x``
        """
        return apply_by_task(x, task, self.n_tasks, self.n_groups, self.mlp)


class TaskConditioning(nn.Module):
    """
    Build the input of an actor/critic MLP from the observation: features, then the task encoding and/or one-hot.

    :param observation_space: the observation space
    :param normalize_images: passed to ``preprocess_obs``
    :param n_tasks: number of tasks (``None`` when no task index is needed)
    :param task_encoder: a task encoder shared with the other networks, or ``None``
    :param concat_task_encoding: concatenate the task encoding to the features
    :param concat_task_one_hot: concatenate the task one-hot to the features
    :param condition_features_extractor_on_task: call ``features_extractor(obs, task_encoding)``
    :param detach_task_encoding: stop the gradient of this network's loss into the task encoder
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        normalize_images: bool,
        n_tasks: int | None,
        task_encoder: TaskEncoder | None,
        concat_task_encoding: bool,
        concat_task_one_hot: bool,
        condition_features_extractor_on_task: bool,
        detach_task_encoding: bool,
    ):
        super().__init__()
        self.observation_space, self.normalize_images, self.n_tasks = observation_space, normalize_images, n_tasks
        self.task_encoder = task_encoder
        self.concat_task_encoding = concat_task_encoding and task_encoder is not None
        self.concat_task_one_hot = concat_task_one_hot
        self.condition_features_extractor_on_task = condition_features_extractor_on_task and task_encoder is not None
        self.detach_task_encoding = detach_task_encoding

    def get_constructor_parameters(self) -> dict[str, Any]:
        """:return: the task-encoder arguments of the actor/critic that built this conditioning, as stored here."""
        return dict(
            task_encoder=self.task_encoder,
            concat_task_encoding=self.concat_task_encoding,
            concat_task_one_hot=self.concat_task_one_hot,
            condition_features_extractor_on_task=self.condition_features_extractor_on_task,
            detach_task_encoding=self.detach_task_encoding,
        )

    def extra_dim(self) -> int:
        """:return: how many inputs the conditioning adds to the features."""
        dim = self.task_encoder.output_dim if self.concat_task_encoding and self.task_encoder is not None else 0
        return dim + (self.n_tasks or 0) * self.concat_task_one_hot

    def task_batch(self, obs: PyTorchObs) -> TaskBatch | None:
        """
        :return: the task of each sample: the one ``obs`` carries (a :class:`~mtsb3.common.task.TaskObs`), else derived
            from it (``predict``); ``None`` when the policy does not use task indices and ``obs`` carries none.
        """
        if isinstance(obs, TaskObs):
            return obs.task
        return None if self.n_tasks is None else TaskBatch.from_obs(obs, self.n_tasks)

    def task_index(self, obs: PyTorchObs) -> th.Tensor | None:
        """:return: the ``(batch,)`` task indices, or ``None`` when the policy does not use task indices."""
        task = self.task_batch(obs) if self.n_tasks is not None else None
        return None if task is None else task.index

    def forward(
        self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor, features_grad: bool = True
    ) -> tuple[th.Tensor, TaskBatch | None]:
        """
        :param obs: the raw (not preprocessed) observation batch
        :param features_extractor: the network's features extractor; it gets the task too (a
            :class:`~mtsb3.common.task.TaskObs`), so that a task-conditioned extractor does not derive it again
        :param features_grad: whether gradients flow into the features extractor (False for a shared extractor)
        :return: the MLP input and the task of each sample (``None`` when not used)
        """
        task = self.task_batch(obs)
        encoding = None
        if self.task_encoder is not None:
            assert task is not None
            encoding = self.task_encoder(task.index)
            if self.detach_task_encoding:
                encoding = encoding.detach()
        preprocessed = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        if task is not None and isinstance(preprocessed, dict):
            preprocessed = TaskObs(preprocessed, task)
        with th.set_grad_enabled(features_grad and th.is_grad_enabled()):
            if self.condition_features_extractor_on_task:
                features = features_extractor(preprocessed, encoding)
            else:
                features = features_extractor(preprocessed)
        parts = [features]
        if self.concat_task_encoding:
            assert encoding is not None
            parts.append(encoding)
        if self.concat_task_one_hot:
            assert task is not None and self.n_tasks is not None
            parts.append(nn.functional.one_hot(task.index, self.n_tasks).float())
        return (th.cat(parts, dim=1) if len(parts) > 1 else features), task
