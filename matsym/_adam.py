"""Adam for the search's network, without ``torch.optim``.

Creating any ``torch.optim`` optimiser imports ``torch._dynamo`` (its ``add_param_group`` is wrapped by
``torch._disable_dynamo``, which imports it on first call): 0.9 s of a 5-6 s ``matsym find``, for a compiler matsym
never uses. This is the same algorithm (Kingma & Ba; the update of ``torch.optim.Adam`` without weight decay or
amsgrad) on one flat tensor of all parameters (each parameter becomes a view of it), with a per-parameter
multi-tensor (``torch._foreach_*``) fallback for parameters that miss steps; ``tests/test_search.py`` checks both
against ``torch.optim.Adam`` step by step.
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
        self._flat = self._flatten()

    def _flatten(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Put the parameters and moments in three flat tensors, each parameter a view of its slice.

        A step then takes 8 tensor operations in place of 7 per parameter (0.1 ms of a 4 ms search step on 10
        parameters). Only where all parameters share dtype and device; the parameters keep their values.
        """
        first = self.params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in self.params):
            return None
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        moments = torch.zeros_like(flat), torch.zeros_like(flat)
        offset = 0
        for i, p in enumerate(self.params):
            n = p.numel()
            p.data = flat[offset : offset + n].view_as(p)
            self.exp_avg[i] = moments[0][offset : offset + n].view_as(p)
            self.exp_avg_sq[i] = moments[1][offset : offset + n].view_as(p)
            offset += n
        self._ptrs = [p.data_ptr() for p in self.params]
        return flat, moments[0], moments[1]

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
        if (
            self._flat is not None
            and all(p.grad is not None for p in self.params)
            and len(set(self.steps)) == 1
            and [p.data_ptr() for p in self.params] == self._ptrs  # still views of the flat tensor
        ):
            self._flat_step(lr)
            return
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

    def _flat_step(self, lr: float) -> None:
        """The update of :meth:`step` on the flat tensors (every parameter has a gradient, all at one step)."""
        flat, exp_avg, exp_avg_sq = self._flat
        grad = torch.cat([p.grad.reshape(-1) for p in self.params])
        self.steps = [s + 1 for s in self.steps]
        steps = self.steps[0]
        exp_avg.lerp_(grad, 1.0 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
        denom = exp_avg_sq.sqrt().div_(math.sqrt(1.0 - self.beta2**steps)).add_(self.eps)
        flat.addcdiv_(exp_avg, denom, value=-lr / (1.0 - self.beta1**steps))
