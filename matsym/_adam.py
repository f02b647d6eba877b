"""Adam for the search's network, without ``torch.optim``.

Creating any ``torch.optim`` optimiser imports ``torch._dynamo`` (its ``add_param_group`` is wrapped by
``torch._disable_dynamo``, which imports it on first call): 0.9 s of a 5-6 s ``matsym find``, for a compiler matsym
never uses. This is the same algorithm (Kingma & Ba; the update of ``torch.optim.Adam`` without weight decay or
amsgrad) in a few multi-tensor (``torch._foreach_*``) operations; ``tests/test_search.py`` checks it against
``torch.optim.Adam`` step by step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["Adam"]


class Adam:
    """Adam on ``params`` with ``torch.optim.Adam``'s update and defaults (betas 0.9, 0.999; eps 1e-8).

    Offers what the search uses of a ``torch.optim`` optimiser: ``zero_grad``, ``step`` and ``param_groups``
    (one group whose ``"lr"`` may be changed between steps).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("Adam: no parameters that require gradients")
        self.param_groups = [{"lr": float(lr), "params": self.params}]
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.steps = [0] * len(self.params)  # per parameter: one without a gradient is skipped, as in torch
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient (the others are skipped, as by torch)."""
        lr = self.param_groups[0]["lr"]
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.steps[i] += 1
                groups.setdefault(self.steps[i], []).append(i)
        for steps, index in groups.items():  # one group unless some parameters missed a step
            params = [self.params[i] for i in index]
            grads = [p.grad for p in params]
            exp_avg = [self.exp_avg[i] for i in index]
            exp_avg_sq = [self.exp_avg_sq[i] for i in index]
            torch._foreach_lerp_(exp_avg, grads, 1.0 - self.beta1)
            torch._foreach_mul_(exp_avg_sq, self.beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1.0 - self.beta2)
            bias1 = 1.0 - self.beta1**steps
            bias2 = 1.0 - self.beta2**steps
            denom = torch._foreach_sqrt(exp_avg_sq)
            torch._foreach_div_(denom, math.sqrt(bias2))
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, exp_avg, denom, -lr / bias1)
