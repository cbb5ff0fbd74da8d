"""CS231n ``cs231n/solver.py``: the Solver, minidl.solver.Solver with CS231n's conventions."""
from ... import solver as _solver
from . import optim as _optim

__all__ = ["Solver"]


class Solver(_solver.Solver):
    """CS231n's Solver: minidl.solver.Solver with CS231n's conventions.

    update_rule is a name in cs231n.optim ('sgd', 'sgd_momentum', 'rmsprop', 'adam'; a
    function also works); minibatches and accuracy subsamples are drawn with replacement
    and progress lines read "(Iteration t / T) loss: ...", as in CS231n. The other
    arguments, attributes and methods are minidl.solver.Solver's (the same as CS231n's).
    """

    _sample_with_replacement = True

    def __init__(self, model, data, **kwargs):
        # The course looks rule names up in cs231n.optim: the rules with NumPy's promotion.
        rule = kwargs.get("update_rule", "sgd")
        if isinstance(rule, str) and rule in _optim.__all__:
            kwargs["update_rule"] = getattr(_optim, rule)
        super().__init__(model, data, **kwargs)

    def _print_loss(self, t, num_iterations, start_time):
        print("(Iteration %d / %d) loss: %f" % (t + 1, num_iterations, self.loss_history[-1]))
