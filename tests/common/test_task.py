import pytest
import torch as th
from gymnasium import spaces

from mtsb3.common.task import n_tasks_of, per_task_mean, task_indices, task_one_hot


def test_task_indices_from_raw_and_one_hot():
    idx = th.tensor([2, 0, 1, 2])
    one_hot = th.nn.functional.one_hot(idx, 3).float()
    for form in (idx.float(), idx.float().unsqueeze(1), one_hot, one_hot.unsqueeze(1)):
        assert task_indices(form, 3).tolist() == [2, 0, 1, 2]
    assert task_indices(th.ones(4, 1), 1).tolist() == [0, 0, 0, 0]  # Discrete(1) one-hot
    assert th.equal(task_one_hot(idx.float().unsqueeze(1), 3), one_hot)


def test_per_task_mean_and_presence():
    values = th.tensor([1.0, 3.0, 5.0, 7.0])
    means, present = per_task_mean(values, th.tensor([0, 0, 2, 2]), 4)
    assert means.tolist() == [2.0, 0.0, 6.0, 0.0]
    assert present.tolist() == [True, False, True, False]


def test_n_tasks_of_errors():
    discrete = spaces.Dict({"env_obs": spaces.Box(-1, 1, (2,)), "task_obs": spaces.Discrete(5)})
    assert n_tasks_of(discrete) == 5
    box = spaces.Dict({"env_obs": spaces.Box(-1, 1, (2,)), "task_obs": spaces.Box(-1, 1, (5,))})
    with pytest.raises(ValueError, match="per-task alpha needs a Discrete task_obs"):
        n_tasks_of(box, "per-task alpha")
    with pytest.raises(ValueError, match="Dict observation space"):
        n_tasks_of(spaces.Box(-1, 1, (2,)))
