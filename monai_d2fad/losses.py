"""The training losses: D²4FAD's dual distillation (paper Eq. 1, 2, 5, 6), DCAM's, the two students' and PDD's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_d2fad.networks.d2fad import D2FADOutput
from monai_d2fad.networks.dcam import DCAMOutput
from monai_d2fad.networks.pdd import PDDOutput
from monai_d2fad.networks.two_students import TwoStudentsOutput
from monai_d2fad.scoring import class_token_distance, cosine_distance, map_correlation, noisy_or, support_distance

__all__ = [
    "DCAM_LOSS_DIMENSIONS",
    "LOSS_REDUCTIONS",
    "OBJECTIVES",
    "PDD_STUDENTS",
    "STUDENTS",
    "DCAMLoss",
    "DualDistillationLoss",
    "PDDLoss",
    "TwoStudentsLoss",
    "pdd_student_maps",
]

LOSS_REDUCTIONS = ("location", "flatten")
# how the two students' losses are joined, and which students are trained (the paper's ablations)
OBJECTIVES = ("noisy_or", "sum")
STUDENTS = ("both", "decoder", "encoder")
# PDD's students: both (the paper), or one alone (the ablation)
PDD_STUDENTS = ("both", "student1", "student2")
# the dimension a DCAM loss compares along: "channel" (a vector per location) or "spatial" (a map per channel)
DCAM_LOSS_DIMENSIONS = ("channel", "spatial", "none")


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


def _flat(x: torch.Tensor, dim: str) -> torch.Tensor:
    """``[B, C, H, W]`` as ``[B, N, D]``: the D-long vectors a loss compares along ``dim`` (N of them per image)."""
    flat = x.float().flatten(2)  # [B, C, HW]
    return flat.transpose(1, 2) if dim == "channel" else flat


class DCAMLoss(nn.Module):
    """DCAM's teacher-student losses: cosine distance (CD) and KL divergence (KD), each along ``channel`` or
    ``spatial`` dimension or off (``none``), summed over the three scales. The paper's best: channel CD, spatial KD.

    - CD along ``channel``: ``1 - cos`` of the channel vectors at each location (STFPM's loss up to a factor), mean
      over locations; along ``spatial``: ``1 - cos`` of each channel's flattened map, mean over channels.
    - KD along ``spatial``: each channel's map as a distribution over locations (softmax of ``x / temperature``),
      ``KL(teacher || student)``; along ``channel``: each location's channel vector as a distribution over channels.
      Averaged over the distributions (the reference code sums over channels; the mean keeps CD and KD comparable).

    ``forward(output, target=None)`` compares the teacher with the student's attended features and returns the
    total (``cd + kd_weight * kd``) as MONAI's trainers call a loss; ``last_terms`` keeps ``cd`` and ``kd``.
    """

    def __init__(self, cd: str = "channel", kd: str = "spatial", kd_weight: float = 1.0, temperature: float = 1.0):
        super().__init__()
        self.cd, self.kd = look_up_option(cd, DCAM_LOSS_DIMENSIONS), look_up_option(kd, DCAM_LOSS_DIMENSIONS)
        if self.cd == "none" and self.kd == "none":
            raise ValueError("at least one of the DCAM losses (cd, kd) must be on")
        self.kd_weight, self.temperature = float(kd_weight), float(temperature)
        self.last_terms: dict[str, torch.Tensor] = {}

    def cosine(self, teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
        return (1 - F.cosine_similarity(_flat(teacher, self.cd), _flat(student, self.cd), dim=-1)).mean()

    def divergence(self, teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
        t = F.log_softmax(_flat(teacher, self.kd) / self.temperature, dim=-1)
        s = F.log_softmax(_flat(student, self.kd) / self.temperature, dim=-1)
        return F.kl_div(s, t, log_target=True, reduction="none").sum(-1).mean()

    def forward(self, out: DCAMOutput, target: torch.Tensor | None = None) -> torch.Tensor:
        zero = out.attended[0].new_zeros(())
        pairs = list(zip(out.teacher, out.attended))
        cd = sum((self.cosine(t, s) for t, s in pairs), zero) if self.cd != "none" else zero
        kd = sum((self.divergence(t, s) for t, s in pairs), zero) if self.kd != "none" else zero
        self.last_terms = {"cd": cd.detach(), "kd": kd.detach()}
        return cd + self.kd_weight * kd


def decoder_discrepancy(out: TwoStudentsOutput) -> torch.Tensor:
    """The decoder student's loss per image ``[B]``: Dinomaly's loose constraint, ``1 - cos`` of each whole
    flattened feature grid (scale or group), averaged over the grids."""
    pairs = zip(out.teacher_patches, out.decoder_patches)
    return torch.stack([cosine_distance(t, s, flatten=True) for t, s in pairs]).mean(0)


def encoder_discrepancy(out: TwoStudentsOutput, layers: str = "all") -> torch.Tensor:
    """The encoder student's discrepancy per image ``[B]``: ``class_token_distance`` averaged over every layer's
    class token (training) or of the ``last`` (final) one only (the paper's inference)."""
    pairs = list(zip(out.teacher_classes, out.student_classes))
    pairs = pairs[-1:] if layers == "last" else pairs
    return torch.stack([class_token_distance(t, s) for t, s in pairs]).mean(0)


class TwoStudentsLoss(nn.Module):
    """The two students' joint objective (the paper's Eq. 3): binary cross-entropy of the Noisy-OR probability of
    normality on normal images, ``-log(1 - noisy_or([s_dec, s_enc]))``, averaged over the batch; ``s_dec`` is the
    decoder's ``decoder_discrepancy`` and ``s_enc`` the encoder's ``encoder_discrepancy`` over all layers. A student
    that finds an image normal lowers the other's gradient on it.

    Args:
        objective: ``noisy_or`` (the paper) or ``sum`` (``s_dec + s_enc``, the ablation).
        students: ``both``, or one alone (``decoder``, ``encoder``): then the objective is that student's loss.

    ``forward(output, target=None)`` returns the loss as MONAI's trainers call it; ``last_terms`` keeps the batch
    means of ``decoder`` and ``encoder``.
    """

    def __init__(self, objective: str = "noisy_or", students: str = "both"):
        super().__init__()
        self.objective, self.students = look_up_option(objective, OBJECTIVES), look_up_option(students, STUDENTS)
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, out: TwoStudentsOutput, target: torch.Tensor | None = None) -> torch.Tensor:
        decoder, encoder = decoder_discrepancy(out), encoder_discrepancy(out)
        self.last_terms = {"decoder": decoder.mean().detach(), "encoder": encoder.mean().detach()}
        used = {"both": [decoder, encoder], "decoder": [decoder], "encoder": [encoder]}[self.students]
        if self.objective == "sum" or len(used) == 1:
            return sum(used).mean()
        return -torch.log1p(-noisy_or(used).clamp_max(1 - 1e-6)).mean()


def pdd_student_maps(out: PDDOutput) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each PDD student's discrepancy maps ``[B, h, w]`` per level: ``1 - cos`` against the unified manifold."""
    return (
        [cosine_distance(u, s) for u, s in zip(out.unified, out.student1)],
        [cosine_distance(u, s) for u, s in zip(out.unified, out.student2)],
    )


class PDDLoss(nn.Module):
    """PDD's objective: the students' distillation of the unified manifold, the MMU's terms and the diversity term.

    - ``student1``, ``student2``: ``1 - cos`` per location between the manifold and each student, averaged over
      locations and levels;
    - ``mmu``: each teacher rebuilt from the manifold (``1 - cos`` per location) plus, with two teachers, the matching
      of their projections (``1 - cos`` between them), averaged over levels: trains the MMU alone (the students' target
      is detached);
    - ``diversity``: the correlation over locations of the two students' discrepancy maps on normal images, hinged at
      zero (``map_correlation``): two students whose false alarms coincide are one student twice; their errors are
      pushed apart, not their features, so both stay close to the manifold (sensitive).

    Args:
        diversity_weight: weight of the diversity term (0: off, the ablation).
        mmu_weight: weight of the MMU's terms.
        students: ``both``, or one alone (``student1``, ``student2``; no diversity term then).

    ``forward(output, target=None)`` returns the total as MONAI's trainers call a loss; ``last_terms`` keeps the four
    unweighted terms.
    """

    def __init__(self, diversity_weight: float = 0.1, mmu_weight: float = 1.0, students: str = "both"):
        super().__init__()
        self.diversity_weight, self.mmu_weight = float(diversity_weight), float(mmu_weight)
        self.students = look_up_option(students, PDD_STUDENTS)
        self.last_terms: dict[str, torch.Tensor] = {}

    @staticmethod
    def mmu(out: PDDOutput) -> torch.Tensor:
        rebuilt = [
            cosine_distance(r, t).mean()
            for per_t, per_r in zip(out.teachers, out.rebuilt)
            for t, r in zip(per_t, per_r)
        ]
        terms = torch.stack(rebuilt).sum() / len(out.unified)
        if len(out.matched) == 2:
            terms = terms + torch.stack([cosine_distance(a, b).mean() for a, b in zip(*out.matched)]).mean()
        return terms

    def forward(self, out: PDDOutput, target: torch.Tensor | None = None) -> torch.Tensor:
        maps1, maps2 = pdd_student_maps(out)
        student1 = torch.stack([m.mean() for m in maps1]).mean()
        student2 = torch.stack([m.mean() for m in maps2]).mean()
        diversity = torch.stack([map_correlation(a, b).clamp_min(0).mean() for a, b in zip(maps1, maps2)]).mean()
        mmu = self.mmu(out)
        self.last_terms = {
            "student1": student1.detach(), "student2": student2.detach(), "mmu": mmu.detach(),
            "diversity": diversity.detach(),
        }  # fmt: skip
        if self.students == "student1":
            return student1 + self.mmu_weight * mmu
        if self.students == "student2":
            return student2 + self.mmu_weight * mmu
        return student1 + student2 + self.mmu_weight * mmu + self.diversity_weight * diversity
