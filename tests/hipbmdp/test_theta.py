import pytest
import torch as th

from mtsb3.common.task_encoder import TaskEncoder
from mtsb3.hipbmdp.policies import ThetaModel, contrastive_theta_loss


@pytest.fixture
def theta_model():
    th.manual_seed(0)
    return ThetaModel(TaskEncoder(10, output_dim=5, embedding_dim=6, net_arch=[12]), train_tasks=[3, 4, 7, 8])


def f(theta_model, embedding):
    """mtrl's θ MLP: ReLU, Linear(d, 2d), ReLU, Linear(2d, out), written out from the weights."""
    first, second = theta_model.task_encoder.mlp[1], theta_model.task_encoder.mlp[3]
    return second(th.relu(first(th.relu(embedding))))


def test_embedding_strategy(theta_model):
    idx = th.tensor([0, 3, 9, 3])
    theta = theta_model(idx, "embedding")
    embedding = theta_model.task_encoder.embedding
    th.testing.assert_close(theta, f(theta_model, embedding.weight[idx]))
    th.testing.assert_close(theta_model(idx), theta)  # the default strategy
    # task 0 is a real task with its own learned row (mtrl's padding_idx=0 froze it at zero)
    assert embedding.padding_idx is None
    assert not th.allclose(embedding.weight[0], th.zeros(6))
    theta_model(th.tensor([0]), "embedding").sum().backward()
    assert embedding.weight.grad[0].abs().sum() > 0


def test_zero_mean_and_mean_train_strategies(theta_model):
    idx = th.tensor([5, 6, 2])
    th.testing.assert_close(theta_model(idx, "zero"), f(theta_model, th.zeros(1, 6)).expand(3, -1))
    all_thetas = f(theta_model, theta_model.task_encoder.embedding.weight)
    th.testing.assert_close(theta_model(idx, "mean"), all_thetas.mean(0, keepdim=True).expand(3, -1))
    train = all_thetas[[3, 4, 7, 8]].mean(0, keepdim=True)
    th.testing.assert_close(theta_model(idx, "mean_train"), train.expand(3, -1))
    # the per-task value does not depend on the requested task for the pooled strategies
    assert th.allclose(theta_model(th.tensor([1]), "mean_train"), theta_model(th.tensor([9]), "mean_train"))
    theta_model.strategy = "mean"
    th.testing.assert_close(theta_model(idx), theta_model(idx, "mean"))


def test_strategy_gradients(theta_model):
    theta_model(th.tensor([4]), "mean_train").sum().backward()
    grad = theta_model.task_encoder.embedding.weight.grad
    assert set(th.nonzero(grad.abs().sum(1)).flatten().tolist()) <= {3, 4, 7, 8}
    assert grad[[3, 4, 7, 8]].abs().sum() > 0


def test_theta_errors(theta_model):
    with pytest.raises(ValueError, match=r"one of \('embedding', 'zero', 'mean', 'mean_train'\)"):
        theta_model(th.tensor([0]), "random")
    with pytest.raises(ValueError, match=r"task indices in \[0, 10\)"):
        ThetaModel(TaskEncoder(10), train_tasks=[3, 10])
    with pytest.raises(ValueError, match="non-empty"):
        ThetaModel(TaskEncoder(10), train_tasks=[])


def test_contrastive_loss_closed_form():
    theta = th.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]], requires_grad=True)
    mu = th.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [2.0, 0.0, 0.0]], requires_grad=True)
    mu_flip = th.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [2.0, 2.0, 0.0]], requires_grad=True)
    # theta - flip(theta) = [[-2, -1], [0, 0], [2, 1]] -> Frobenius norm sqrt(10); mu - mu' -> sqrt(1 + 1 + 4)
    expected = (th.sqrt(th.tensor(10.0)) - th.sqrt(th.tensor(6.0))) ** 2
    loss = contrastive_theta_loss(theta, mu, mu_flip)
    th.testing.assert_close(loss, expected)
    loss.backward()
    assert theta.grad is not None and mu.grad is None and mu_flip.grad is None  # the transition side is detached


def test_per_task_strategies(theta_model):
    e, m = "embedding", "mean_train"
    model = ThetaModel(theta_model.task_encoder, [3, 4, 7, 8], [e, "zero", m, e, e, m, m, e, e, "mean"])
    idx = th.tensor([9, 3, 5, 1, 4])
    expected = th.stack(
        [
            model(idx[:1], "mean")[0],
            model(idx[1:2], "embedding")[0],
            model(idx[2:3], "mean_train")[0],
            model(idx[3:4], "zero")[0],
            model(idx[4:5], "embedding")[0],
        ]
    )
    th.testing.assert_close(model(idx), expected)
    model.strategy = "zero"  # a global strategy overrides the per-task ones
    th.testing.assert_close(model(idx), model(idx, "zero"))
    with pytest.raises(ValueError, match=r"one strategy per task \(10\)"):
        ThetaModel(theta_model.task_encoder, [3], ["embedding"])
