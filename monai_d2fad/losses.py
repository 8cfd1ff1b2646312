"""Dual-distillation losses (paper Eq. 1, 2, 5, 6)."""

from __future__ import annotations

import torch
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.d2fad import D2FADOutput
from monai_d2fad.scoring import cosine_distance, support_distance

__all__ = ["LOSS_REDUCTIONS", "DualDistillationLoss"]

LOSS_REDUCTIONS = ("location", "flatten")


class DualDistillationLoss(nn.Module):
    """``lam * L_tsd + L_ssd``, summed over scales and averaged over locations and the batch.

    Args:
        lam: weight of the teacher-student term. The paper's 0.1 (Table 3, WRN50-2) lets the self-distillation
            term collapse the student before it learns its teacher; 100 was chosen on the training tasks' ``val``
            splits with the Lite0 teacher among 0.1, 1, 10, 30 and 100 (docs/RESULTS.md).
        tsd: use teacher-student distillation on the query (Eq. 1).
        ssd: use student self-distillation on the supports (Eq. 2 / Eq. 5).
        reduction: ``"location"``: cosine per location as the equations say; ``"flatten"``: cosine of each whole
            flattened map per image, as the official code computes it.

    ``forward(output, target=None)`` returns the total as a tensor, as MONAI's trainers call a loss (the target is
    unused: the normal episodes are their own target); it keeps the unweighted terms of its last call, detached, in
    ``last_terms`` (``{"tsd", "ssd"}``) for logging (``engines.LossTermsHandler``). ``terms(output)`` gives all
    three at once.
    """

    def __init__(self, lam: float = 100.0, tsd: bool = True, ssd: bool = True, reduction: str = "location"):
        super().__init__()
        if not (tsd or ssd):
            raise ValueError("at least one of tsd and ssd must be on")
        reduction = look_up_option(reduction, LOSS_REDUCTIONS)
        self.lam, self.use_tsd, self.use_ssd = float(lam), tsd, ssd
        self.flatten = reduction == "flatten"
        self.last_terms: dict[str, torch.Tensor] = {}

    def teacher_student(self, out: D2FADOutput) -> torch.Tensor:
        return sum(cosine_distance(t, s, self.flatten).mean() for t, s in zip(out.teacher_query, out.student_query))

    def self_distillation(self, out: D2FADOutput) -> torch.Tensor:
        return sum(
            support_distance(q, s, w, out.aggregate, self.flatten).mean()
            for q, s, w in zip(out.student_query, out.student_support, out.weights)
        )

    def terms(self, out: D2FADOutput) -> dict[str, torch.Tensor]:
        """``loss`` (the weighted total, with its graph), ``tsd`` and ``ssd`` (unweighted, detached)."""
        tsd = self.teacher_student(out)
        ssd = self.self_distillation(out)
        total = (self.lam * tsd if self.use_tsd else 0) + (ssd if self.use_ssd else 0)
        return {"loss": total, "tsd": tsd.detach(), "ssd": ssd.detach()}

    def forward(self, out: D2FADOutput, target: torch.Tensor | None = None) -> torch.Tensor:
        terms = self.terms(out)
        self.last_terms = {"tsd": terms["tsd"], "ssd": terms["ssd"]}
        return terms["loss"]
