"""CS231n ``cs231n/gradient_check.py``: numeric gradients by centered differences.

All five are minidl.gradcheck's numeric derivative (one implementation): the whole-array ones
are minidl.gradcheck's functions themselves; the blob and sparse variants call it with the
course's arguments and printing.
"""
import random as _random

from ... import gradcheck as _gradcheck

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array",
           "eval_numerical_gradient_blobs", "eval_numerical_gradient_net", "grad_check_sparse"]

eval_numerical_gradient = _gradcheck.eval_numerical_gradient
eval_numerical_gradient_array = _gradcheck.eval_numerical_gradient_array


def eval_numerical_gradient_blobs(f, inputs, output, h=1e-5):
    """Numeric gradients for a function that works on "blobs" (objects with arrays ``.vals``
    and ``.diffs``, as in the course's older layer API).

    f(*inputs, output) writes its result into output.vals; the loss is
    sum(output.diffs * output.vals). inputs: a tuple (or list) of blobs, each perturbed in
    place through its .vals and restored. Returns a list with one array per input blob, of
    that blob's .vals shape: d loss / d blob.vals.
    """
    inputs = tuple(inputs)

    def run(_):
        f(*(inputs + (output,)))
        return output.vals

    return [_gradcheck.eval_numerical_gradient_array(run, blob.vals, output.diffs, h=h)
            for blob in inputs]


def eval_numerical_gradient_net(net, inputs, output, h=1e-5):
    """eval_numerical_gradient_blobs for a net whose ``net.forward()`` reads the input blobs
    and writes the output blob. Returns one gradient array per input blob."""
    return eval_numerical_gradient_blobs(lambda *args: net.forward(), inputs, output, h=h)


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare analytic_grad with numeric derivatives at num_checks random elements of x.

    f(x) returns a scalar; x (any shape) is perturbed in place and restored; analytic_grad has
    x's shape. Elements are drawn with Python's ``random.randrange`` (as the course: seed
    with ``random.seed``). For each one it prints
    ``numerical: %f analytic: %f, relative error: %e``, the relative error being CS231n's
    |num - ana| / max(1e-8, |num| + |ana|) (the notebooks' rel_error). Returns None.
    """
    for _ in range(num_checks):
        ix = tuple(_random.randrange(m) for m in x.shape)
        grad_numerical = _gradcheck.centered_difference(f, x, ix, None, h)
        grad_analytic = analytic_grad[ix]
        error = _gradcheck.rel_error_max(grad_numerical, grad_analytic)
        print("numerical: %f analytic: %f, relative error: %e"
              % (grad_numerical, grad_analytic, error))
