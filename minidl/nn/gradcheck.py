"""check_gradients: the numeric gradient check of a whole module, with respect to its input and
every parameter (minidl.gradcheck.check_module, the one gradient-check engine's module case).

By default it compares directional derivatives along random vectors, as Chainer's
gradient_check does: every element of every gradient at the cost of two forwards per
direction, plus a few single elements so that a report can point at an index. Run it in
float64.
"""
from ..gradcheck import GradCheckReport, check_module
from .module import Module

__all__ = ["check_gradients", "GradCheckReport"]


def check_gradients(module, x, **options):
    """Check module.backward against numeric derivatives of its forward.

    module: a minidl.nn.Module (float64 recommended: module.astype(np.float64)); x: an input
    batch of the module's dtype. Options (seed, h, directions, elements, rtol, wrt, joint,
    mode, atol, smaller_steps) as minidl.gradcheck.check_module. Returns a GradCheckReport.
    """
    if not isinstance(module, Module):
        raise TypeError(f"check_gradients: module must be a minidl.nn.Module, got "
                        f"{type(module).__name__}")
    return check_module(module, x, **options)
