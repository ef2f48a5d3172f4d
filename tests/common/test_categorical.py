"""The categorical value support of BRC's critic: two-hot encoding, C51's projection, cross-entropy, argument checks."""

from __future__ import annotations

import pytest
import torch as th

from mtsb3.common.categorical import CategoricalSupport, cross_entropy, make_support

th.set_num_threads(1)


def test_two_hot_recovers_the_scalar_and_sums_to_one():
    support = CategoricalSupport(101, -10.0, 10.0)
    values = th.tensor([-9.99, -3.1415, 0.0, 0.05, 2.5, 7.77, 10.0])
    encoded = support.two_hot(values)
    assert encoded.shape == (7, 101)
    th.testing.assert_close(encoded.sum(dim=1), th.ones(7))
    th.testing.assert_close(encoded @ support.atoms, values)
    assert ((encoded > 0).sum(dim=1) <= 2).all()  # at most the two neighbouring atoms
    on_atom = support.two_hot(th.tensor([2.0]))[0]  # exactly atom 60: one-hot
    assert on_atom[60] == 1.0 and on_atom.sum() == 1.0
    between = support.two_hot(th.tensor([0.05]))[0]  # a quarter of the way from atom 50 (0.0) to atom 51 (0.2)
    th.testing.assert_close(between[50:52], th.tensor([0.75, 0.25]))


def test_values_outside_the_support_are_clipped():
    support = CategoricalSupport(11, -1.0, 1.0)
    encoded = support.two_hot(th.tensor([-5.0, 3.0, 1.0000001]))
    th.testing.assert_close(encoded[0], th.nn.functional.one_hot(th.tensor(0), 11).float())
    th.testing.assert_close(encoded[1], th.nn.functional.one_hot(th.tensor(10), 11).float())
    th.testing.assert_close(encoded @ support.atoms, th.tensor([-1.0, 1.0, 1.0]))


def test_projection_of_a_shifted_distribution_keeps_mass_and_mean():
    support = CategoricalSupport(51, -5.0, 5.0)
    probs = th.softmax(th.randn(4, 51), dim=1)
    # a Bellman update r + gamma z that stays inside the support: the projection keeps the mean exactly
    shifted = 0.3 + 0.9 * support.atoms.expand(4, 51)
    projected = support.project(shifted, probs)
    th.testing.assert_close(projected.sum(dim=1), th.ones(4))
    th.testing.assert_close(projected @ support.atoms, (probs * shifted).sum(dim=1))
    # the expectation of logits is the expected atom
    logits = th.randn(3, 4, 51)
    th.testing.assert_close(support.expectation(logits).squeeze(-1), th.softmax(logits, -1) @ support.atoms)


def test_cross_entropy_loss_decreases_on_a_fixed_target():
    th.manual_seed(0)
    support = CategoricalSupport(101, -10.0, 10.0)
    x = th.randn(64, 3)
    targets = (x @ th.tensor([2.0, -1.0, 0.5])).clamp(-10, 10)
    target_probs = support.two_hot(targets)
    net = th.nn.Sequential(th.nn.Linear(3, 64), th.nn.ReLU(), th.nn.Linear(64, 101))
    optimizer = th.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(200):
        loss = cross_entropy(net(x), target_probs).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # the expectation of the learned distribution regresses the targets
    assert (support.expectation(net(x)).squeeze(-1) - targets).abs().mean() < 0.5


def test_support_arguments():
    assert make_support("regression") is None
    support = make_support("categorical", dict(n_atoms=5, v_min=0, v_max=4))
    assert isinstance(support, CategoricalSupport) and support.atoms.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "atoms" not in support.state_dict()  # derived from the arguments, not stored
    with pytest.raises(ValueError, match=r"Unknown critic_type 'c51'; choose one of \['regression', 'categorical'\]"):
        make_support("c51")
    with pytest.raises(ValueError, match=r"categorical_kwargs=.*needs critic_type='categorical'"):
        make_support("regression", dict(n_atoms=51))
    with pytest.raises(ValueError, match="n_atoms must be an int >= 2, got 1"):
        CategoricalSupport(1)
    with pytest.raises(ValueError, match=r"v_min < v_max, got v_min=1\.0, v_max=-1\.0"):
        CategoricalSupport(11, 1.0, -1.0)
