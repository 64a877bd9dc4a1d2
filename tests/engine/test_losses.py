"""leukcore.losses against torch's own losses and hand computations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leukcore.losses import l2_penalty, list_losses, make_loss


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 4, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 4, (16,), generator=g)
    return logits, labels


def _value_and_grad(loss, logits, target):
    z = logits.clone().requires_grad_(True)
    value = loss(z, target)
    (grad,) = torch.autograd.grad(value, z)
    return value.detach(), grad


def test_registry():
    assert list_losses() == ["bce", "focal", "kl", "mce", "sparse_ce"]
    with pytest.raises(ValueError, match="bce, focal, kl, mce, sparse_ce"):
        make_loss("hinge")
    assert make_loss("focal", gamma=1.5).gamma == 1.5


def test_kl_mce_sparse_identical_for_one_hot(batch):
    logits, labels = batch
    onehot = F.one_hot(labels, 4).double()
    reference = _value_and_grad(lambda z, y: F.cross_entropy(z, y), logits, labels)
    for name in ("mce", "sparse_ce", "kl"):
        for target in (labels, onehot):
            value, grad = _value_and_grad(make_loss(name), logits, target)
            torch.testing.assert_close(value, reference[0])
            torch.testing.assert_close(grad, reference[1])
    z32 = logits.float()  # float32 logits, the usual training dtype
    for name in ("mce", "sparse_ce", "kl"):
        torch.testing.assert_close(make_loss(name)(z32, labels), F.cross_entropy(z32, labels))
    # the same with class weights: F.cross_entropy's weighted mean
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    ref_w = _value_and_grad(lambda z, y: F.cross_entropy(z, y, weight=w), logits, labels)
    for name in ("mce", "sparse_ce", "kl", "focal"):
        kw = {"gamma": 0.0} if name == "focal" else {}
        value, grad = _value_and_grad(make_loss(name, weight=w.tolist(), **kw), logits, onehot)
        torch.testing.assert_close(value, ref_w[0])
        torch.testing.assert_close(grad, ref_w[1])


def test_soft_targets_match_torch(batch):
    logits, _ = batch
    g = torch.Generator().manual_seed(1)
    y = torch.softmax(torch.randn(16, 4, generator=g, dtype=torch.float64), dim=1)
    y[0] = torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)  # zeros: 0 log 0 = 0
    logp = F.log_softmax(logits, dim=1)
    kl = make_loss("kl")(logits, y)
    torch.testing.assert_close(kl, F.kl_div(logp, y, reduction="batchmean"))
    torch.testing.assert_close(kl, (y * (torch.log(y.clamp_min(1e-300)) - logp)).sum(1).mean())
    mce = make_loss("mce")(logits, y)
    torch.testing.assert_close(mce, F.cross_entropy(logits, y))
    entropy = -(torch.xlogy(y, y)).sum(1).mean()
    torch.testing.assert_close(kl, mce - entropy)  # KL = CE - H(y)
    with pytest.raises(ValueError):
        make_loss("sparse_ce")(logits, y)


def test_focal(batch):
    logits, labels = batch
    torch.testing.assert_close(
        make_loss("focal", gamma=0.0)(logits, labels), F.cross_entropy(logits, labels)
    )
    p = torch.softmax(logits, 1)[torch.arange(16), labels]
    hand = (-(1 - p) ** 2 * torch.log(p)).mean()
    torch.testing.assert_close(make_loss("focal")(logits, labels), hand)
    assert make_loss("focal", gamma=2)(logits, labels) < F.cross_entropy(logits, labels)


def test_bce_two_outputs_keras_semantics(batch):
    logits, labels = batch
    z, y = logits[:, :2], labels % 2
    t = F.one_hot(y, 2).double()
    expected = F.binary_cross_entropy_with_logits(z, t)
    loss = make_loss("bce")
    torch.testing.assert_close(loss(z, y), expected)
    torch.testing.assert_close(loss(z, t), expected)
    s = torch.sigmoid(z)  # Keras: mean over outputs, then over the batch
    hand = -(t * torch.log(s) + (1 - t) * torch.log(1 - s)).mean(dim=1).mean()
    torch.testing.assert_close(loss(z, y), hand)
    probs = loss.probabilities(z)
    torch.testing.assert_close(probs.sum(1), torch.ones(16, dtype=torch.float64))
    torch.testing.assert_close(probs[:, 1], s[:, 1] / s.sum(1))


def test_bce_one_logit(batch):
    logits, labels = batch
    z, y = logits[:, 0], labels % 2
    expected = F.binary_cross_entropy_with_logits(z, y.double())
    loss = make_loss("bce")
    for zz in (z, z[:, None]):
        torch.testing.assert_close(loss(zz, y), expected)
        torch.testing.assert_close(loss(zz, F.one_hot(y, 2).double()), expected)
        probs = loss.probabilities(zz)
        assert probs.shape == (16, 2)
        torch.testing.assert_close(probs[:, 1], torch.sigmoid(z))
        torch.testing.assert_close(probs.sum(1), torch.ones(16, dtype=torch.float64))


def test_probabilities_softmax(batch):
    logits, _ = batch
    for name in ("mce", "sparse_ce", "kl", "focal"):
        torch.testing.assert_close(make_loss(name).probabilities(logits), logits.softmax(1))


def test_l2_penalty_matches_hand_sum():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5), nn.LayerNorm(5), nn.Linear(5, 2),
    )
    with torch.no_grad():  # make BN / LN parameters non-trivial so excluding them matters
        for m in (model[1], model[5]):
            m.weight.fill_(2.0)
            m.bias.fill_(1.0)
    hand = sum((model[i].weight.double() ** 2).sum() for i in (0, 4, 6))
    pen = l2_penalty(model, 0.01)
    torch.testing.assert_close(pen.double(), 0.01 * hand, rtol=1e-5, atol=1e-7)
    pen.backward()
    torch.testing.assert_close(model[0].weight.grad, 0.02 * model[0].weight.detach())
    assert model[0].bias.grad is None and model[1].weight.grad is None
    assert float(l2_penalty(nn.ReLU(), 0.01)) == 0.0
