"""Each clustering loss against a naive loop-by-loop implementation."""

import math

import pytest
import torch

from aeclust.losses.dec import kl_clustering_loss, soft_assignment, target_distribution
from aeclust.losses.embedded_kmeans import embedded_kmeans_loss


@pytest.fixture
def codes():
    g = torch.Generator().manual_seed(0)
    return torch.randn(7, 3, generator=g), torch.randn(4, 3, generator=g)


def test_embedded_kmeans_matches_naive(codes):
    h, centers = codes
    assign = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    naive = (
        sum(sum((h[n, k] - centers[assign[n], k]) ** 2 for k in range(3)) for n in range(7))
        * 0.2
        / (2 * 7)
    )
    assert embedded_kmeans_loss(h, centers, assign, lam=0.2).item() == pytest.approx(naive.item())


def test_embedded_kmeans_gradient_only_to_codes(codes):
    h, centers = codes
    h, centers = h.clone().requires_grad_(), centers.clone().requires_grad_()
    embedded_kmeans_loss(h, centers, torch.zeros(7, dtype=torch.long)).backward()
    assert h.grad is not None and centers.grad is None


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_soft_assignment_matches_naive(codes, alpha):
    z, mu = codes
    q = soft_assignment(z, mu, alpha)
    for i in range(7):
        kernel = [
            (1 + sum((z[i, k] - mu[j, k]) ** 2 for k in range(3)) / alpha) ** (-(alpha + 1) / 2)
            for j in range(4)
        ]
        for j in range(4):
            assert q[i, j].item() == pytest.approx((kernel[j] / sum(kernel)).item(), rel=1e-5)


def test_target_distribution_and_kl_match_naive(codes):
    z, mu = codes
    q = soft_assignment(z, mu)
    p = target_distribution(q)
    f = [sum(q[i, j] for i in range(7)) for j in range(4)]
    for i in range(7):
        row = [q[i, j] ** 2 / f[j] for j in range(4)]
        for j in range(4):
            assert p[i, j].item() == pytest.approx((row[j] / sum(row)).item(), rel=1e-5)
    naive = (
        sum(
            p[i, j].item() * math.log(p[i, j].item() / q[i, j].item())
            for i in range(7)
            for j in range(4)
        )
        / 7
    )
    assert kl_clustering_loss(q, p).item() == pytest.approx(naive, rel=1e-5)
    assert kl_clustering_loss(q, q).item() == pytest.approx(0.0, abs=1e-6)
    assert p.max(dim=1).values.mean() > q.max(dim=1).values.mean()  # P is sharper than Q


def test_relativistic_losses_match_the_thesis_equations_and_push_the_right_way():
    """Morais eqs. 3.3/3.4 written out naively, with f = sigmoid."""
    import torch

    from aeclust.losses import hierarchical_losses, relativistic_d_loss, relativistic_g_loss

    g = torch.Generator().manual_seed(0)
    d_real, d_fake = torch.randn(16, generator=g) * 5, torch.randn(16, generator=g) * 5
    naive_d = (-torch.log(torch.sigmoid(d_real - d_fake))).mean()
    naive_g = (-torch.log(torch.sigmoid(d_fake - d_real))).mean()
    assert torch.allclose(relativistic_d_loss(d_real, d_fake), naive_d, atol=1e-5)
    assert torch.allclose(relativistic_g_loss(d_real, d_fake), naive_g, atol=1e-5)
    big = torch.tensor([200.0]), torch.tensor([-200.0])  # -log(sigmoid(-400)) = 400, finite
    assert torch.isclose(relativistic_g_loss(*big), torch.tensor(400.0))
    # the discriminator gains by scoring prior samples higher than codes, the encoder by
    # the opposite: the gradients point that way
    real, fake = d_real.clone().requires_grad_(), d_fake.clone().requires_grad_()
    relativistic_d_loss(real, fake).backward()
    assert (real.grad <= 0).all() and (fake.grad >= 0).all()
    groups = [(d_real, d_fake), (d_fake, d_real)]
    d_loss, g_loss = hierarchical_losses(*zip(*groups, strict=True), alphas=[1.0, 0.5])
    assert torch.allclose(d_loss, naive_d + 0.5 * naive_g, atol=1e-5)
    assert torch.allclose(g_loss, naive_g + 0.5 * naive_d, atol=1e-5)
    with pytest.raises(ValueError, match="one \\(real, fake, alpha\\) triple"):
        hierarchical_losses([d_real], [d_fake], [1.0, 0.5])
