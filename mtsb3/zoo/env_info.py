"""What the zoo needs to know about an env id: whether it is multi-task, its task names and task splits."""

from __future__ import annotations

from typing import Any, NamedTuple


class EnvInfo(NamedTuple):
    """What the zoo needs to know about an env id (read from one probe env)."""

    is_multi_task: bool
    task_names: list[str] | None
    #: ``task_splits`` of the env (HiP-BMDP: train / interpolation / extrapolation task indices), or ``None``
    task_splits: dict[str, list[int]] | None
    render_modes: list[str]

    @property
    def train_tasks(self) -> list[int] | None:
        """The tasks to train on: the ``train`` split where there is one, else all (``None``)."""
        return list(self.task_splits["train"]) if self.task_splits and "train" in self.task_splits else None

    @property
    def eval_tasks(self) -> list[int] | None:
        """The tasks to evaluate: every task of a split (in split order) where there are splits, else all (``None``)."""
        if not self.task_splits:
            return None
        return list(dict.fromkeys(t for split in self.task_splits.values() for t in split))


def env_info(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvInfo:
    """:return: the :class:`EnvInfo` of ``env_id`` (builds one env; lazy multi-task envs build one task)"""
    import gymnasium as gym

    from mtgym.core import MTEnv

    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        unwrapped = env.unwrapped
        splits = getattr(unwrapped, "task_splits", None)
        return EnvInfo(
            isinstance(unwrapped, MTEnv),
            getattr(unwrapped, "task_names", None),
            {k: [int(t) for t in v] for k, v in splits.items()} if splits else None,
            list(env.metadata.get("render_modes", [])),
        )
    finally:
        env.close()
