"""Seeing inside a CNN, as arrays (plot them with matplotlib's imshow; nothing here plots,
prints or needs a plotting library).

    filter_grid(w, padding=1, normalize=True, ncols=None)   filters tiled into one image
    filters(model, layer=None, input_shape=None)            a layer's weights as images
    layer_names(model), get_layer(model, name)              the names `layer` arguments take
    activations(model, x, layers)                           feature maps of named layers
    saliency(model, x, y)                                   max over channels of |d score_y / d x|
                                                            (Simonyan et al. 2014)
    occlusion(model, x, y, patch, stride, fill=0)           p(y) as a patch slides over the
                                                            image (Zeiler & Fergus 2014)
    class_visualization(model, target, steps, lr, l2_reg, jitter, blur_every, ...)
                                                            gradient ascent on the input, as
                                                            CS231n's assignment 3 does it
    fooling_image(model, x, target)                         normalised gradient steps until
                                                            the prediction is `target`
    deconv(model, x, layer, channel=None)                   one channel's strongest activation
                                                            projected back to the input by
                                                            guided backpropagation

Models: a minidl.nn Module whose forward gives class scores (N, K), a ClassifierModel (its
module is used), or a coursework model (TwoLayerNet, ..., DeepConvNet, and the CS231n ones;
their ``to_module()`` is used). Layers are named as in ``state_dict`` without the parameter
('layer1.0.conv1' for 'layer1.0.conv1.weight'); ``layer_names(model)`` lists them.

Every function that runs the model runs it inside ``Module.inspecting()``: in eval mode
(batch norm with its running statistics, no dropout), float32 or float64 as the model is,
and afterwards each module's train/eval mode and accumulated parameter gradients are what
they were before. Inputs x (N, C, H, W) (a batch axis first, as for ``model.forward``) are
cast to the model's dtype; results have the model's dtype unless said otherwise. Gradients
come from the model's own backward pass (the layers' backward functions): nothing here
differentiates anything a second time.

filter_grid also serves cs231n.vis_utils (visualize_grid, vis_grid, vis_nn).
"""
import contextlib
import difflib
import math
from collections import OrderedDict

import numpy as np

from .layers._checks import pair
from .layers.conv import FastConv
from .losses import log_softmax
from .nn import Conv2d, Linear, Module, ReLU, ReLU6

__all__ = ["filter_grid", "filters", "layer_names", "get_layer", "activations", "saliency",
           "occlusion", "class_visualization", "fooling_image", "deconv", "UnknownLayerError",
           "NotFooledError"]

# CS231n's class visualisation and fooling images work on 3 x 224 x 224 images; step sizes
# and jitter given for them are scaled to other sizes (see class_visualization).
_REFERENCE_PIXELS = 3 * 224 * 224
_REFERENCE_SIDE = 224


class UnknownLayerError(ValueError):
    """A layer name the model does not have. The message lists the names it has; the
    attributes: layer (the name asked for), valid (the model's layer names) and close (the
    valid names that resemble it)."""

    def __init__(self, fn, layer, valid):
        self.layer, self.valid = layer, list(valid)
        self.close = difflib.get_close_matches(str(layer), self.valid, n=3)
        hint = f" (did you mean {', '.join(map(repr, self.close))}?)" if self.close else ""
        super().__init__(f"{fn}: the model has no layer {layer!r}{hint}; its layers are: "
                         f"{', '.join(self.valid)}")


class NotFooledError(RuntimeError):
    """fooling_image did not reach the target class within its steps."""


def filter_grid(w, padding=1, normalize=True, ncols=None):
    """Tile the filters of a convolution layer into one image.

    Inputs:
    - w: weights (F, C, KH, KW), e.g. ``model.params['W1']`` or a Conv2d's weight (any
      numeric array).
    - padding: blank pixels (0) between neighbouring cells (none around the border).
    - normalize: scale each filter on its own to [0, 1] (its minimum -> 0, its maximum -> 1; a
      constant filter -> 0), so that small filters are as visible as large ones; False keeps
      the values.
    - ncols: filters per row. Default: a square grid of ceil(sqrt(F)) rows and columns (the
      rows may be partly empty); with ncols, ceil(F / ncols) rows.

    Returns, with R rows and K columns of cells, GH = R*KH + (R-1)*padding and
    GW = K*KW + (K-1)*padding:
    - (GH, GW, 3) when C == 3: an RGB image, channels last (for imshow);
    - (C, GH, GW) otherwise: one grey tiling per input channel.
    Filter f fills cell (f // K, f % K), i.e. rows [r*(KH+padding), r*(KH+padding) + KH) and
    the matching columns; empty cells and padding are 0. The dtype is float64 when
    normalize is True, else w's float dtype (integers give float64).

    Example: the lecture's AlexNet conv1, w (64, 3, 11, 11) -> (95, 95, 3), an 8 x 8 grid.
    """
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: w must be 4-D (F, C, KH, KW), got shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"filter_grid: w must be a numeric array, got {w.dtype} {w.shape}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"filter_grid: padding must be a non-negative int, got {padding!r}")
    F, C, KH, KW = w.shape
    if F == 0:
        raise ValueError(f"filter_grid: w has no filters (shape {w.shape})")
    if ncols is None:
        cols = rows = math.ceil(math.sqrt(F))
    else:
        if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
            raise ValueError(f"filter_grid: ncols must be a positive int, got {ncols!r}")
        cols, rows = int(ncols), math.ceil(F / ncols)

    if normalize:
        flat = w.reshape(F, -1).astype(np.float64)
        low = flat.min(axis=1, keepdims=True)
        span = flat.max(axis=1, keepdims=True) - low
        # A constant filter has nothing to show: 0 rather than 0/0.
        cells = np.divide(flat - low, span, out=np.zeros_like(flat), where=span > 0)
        cells = cells.reshape(w.shape)
    else:
        cells = w if w.dtype.kind == "f" else w.astype(np.float64)

    step_h, step_w = KH + padding, KW + padding
    grid = np.zeros((C, rows * step_h - padding, cols * step_w - padding), dtype=cells.dtype)
    for f in range(F):
        r, c = divmod(f, cols)
        grid[:, r * step_h:r * step_h + KH, c * step_w:c * step_w + KW] = cells[f]
    return np.ascontiguousarray(grid.transpose(1, 2, 0)) if C == 3 else grid


# --------------------------------------------------------------------------- shared pieces

def _module(fn, model):
    """The minidl.nn Module behind model (see the module docstring)."""
    if isinstance(model, Module):
        return model
    inner = getattr(model, "module", None)
    if isinstance(inner, Module):
        return inner
    if callable(getattr(model, "to_module", None)):
        return model.to_module()
    raise TypeError(f"{fn}: model must be a minidl.nn Module, a ClassifierModel or a "
                    f"coursework model (with to_module()), got {type(model).__name__}")


def layer_names(model):
    """Names of every layer (module) of model, in registration order, as ``layer``
    arguments take them: 'conv1', 'layer1', 'layer1.0', 'layer1.0.conv1', ... (the model
    itself, '', is not listed)."""
    return [name for name, _ in _module("layer_names", model).named_modules() if name]


def _layer(fn, module, name):
    """The submodule called name; UnknownLayerError listing the valid names otherwise."""
    table = dict(module.named_modules())
    if isinstance(name, str) and name and name in table:
        return table[name]
    raise UnknownLayerError(fn, name, [n for n in table if n])


def get_layer(model, name):
    """The layer (module) of model called name (see layer_names); UnknownLayerError, a
    ValueError listing the model's layer names, when it has none of that name."""
    return _layer("get_layer", _module("get_layer", model), name)


def _images(fn, module, x, name="x"):
    """x as a C-contiguous array of the model's dtype, with a batch axis; the whole model's
    shapes are checked (ShapeError naming the first layer that cannot take it)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name} must be a numeric array, got {x.dtype} {x.shape}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} must be a batch (N, C, H, W) with N >= 1 (add a batch "
                         f"axis with x[None]), got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=module.dtype)
    out_shape = module.output_shape(x.shape[1:])
    if len(out_shape) != 1:
        raise ValueError(f"{fn}: the model's output for one sample has shape {out_shape}; "
                         "expected class scores (K,)")
    return x, out_shape[0]


def _labels(fn, name, y, n, k):
    """y as n class indices in [0, k): an int (the same class for every image) or n ints."""
    y = np.asarray(y)
    if y.ndim == 0:
        y = np.full(n, y)
    if y.dtype.kind not in "iu" or y.shape != (n,):
        raise ValueError(f"{fn}: {name} must be a class index or {n} of them (one per image), "
                         f"got {y.dtype} of shape {y.shape}")
    bad = (y < 0) | (y >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{fn}: {name} = {int(y[i])} (image {i}) is not a class of the "
                         f"model's {k} scores (0 to {k - 1})")
    return y.astype(np.intp)


def _scores(fn, out):
    if isinstance(out, tuple):  # (logits, aux, ...) models in training mode
        out = out[0]
    return out


def _class_gradient(module, x, classes):
    """d scores[i, classes[i]] / d x for each image i: one forward, one backward."""
    scores = _scores("", module.forward(x))
    dscores = np.zeros_like(scores)
    dscores[np.arange(len(classes)), classes] = 1
    return scores, module.backward(dscores)


def _size_scale(shape):
    """sqrt(pixels / 3x224x224): how a step length given for CS231n's images scales."""
    return math.sqrt(float(np.prod(shape)) / _REFERENCE_PIXELS)


def _positive(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not 0 < value < math.inf:
        raise ValueError(f"{fn}: {name} must be a positive number, got {value!r}")
    return float(value)


def _count(fn, name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- weights

def filters(model, layer=None, input_shape=None):
    """The weights of one layer, as images: (F, C, KH, KW).

    layer: a Conv2d (its weight, (F, C // groups, KH, KW)) or a Linear layer that reads the
    input image itself (its weight rows, reshaped to input_shape: (F, C, H, W)); default:
    the first Conv2d or Linear layer. input_shape: the (C, H, W) a Linear layer's inputs
    have (default: the model's ``default_input``). Returns a copy, in the model's dtype;
    filter_grid tiles it.
    """
    fn = "filters"
    module = _module(fn, model)
    if layer is None:
        layer = next((n for n, m in module.named_modules() if isinstance(m, (Conv2d, Linear))),
                     None)
        if layer is None:
            raise ValueError(f"{fn}: the model has no Conv2d or Linear layer")
    target = _layer(fn, module, layer)
    if isinstance(target, Conv2d):
        return np.array(target.params["weight"], copy=True)
    if not isinstance(target, Linear):
        raise ValueError(f"{fn}: layer {layer!r} is a {type(target).__name__}, which has no "
                         "filters (Conv2d and Linear layers have)")
    shape = tuple(input_shape) if input_shape is not None else getattr(module, "default_input",
                                                                      None)
    w = target.params["weight"]
    if shape is None or len(shape) != 3 or int(np.prod(shape)) != w.shape[1]:
        raise ValueError(f"{fn}: layer {layer!r} is a Linear layer with {w.shape[1]} inputs; "
                         f"its rows are images only when it reads a (C, H, W) input with "
                         f"C*H*W = {w.shape[1]} (input_shape: got {shape})")
    return np.array(w.reshape((w.shape[0],) + tuple(int(s) for s in shape)), copy=True)


# --------------------------------------------------------------------------- activations

def activations(model, x, layers):
    """Feature maps of named layers for a batch of images.

    x (N, C, H, W); layers: a name or a list of names (see layer_names). Returns an
    OrderedDict name -> that layer's output for x (N, ...), in the order asked, each a copy.
    UnknownLayerError (a ValueError) for a name the model does not have.
    """
    fn = "activations"
    module = _module(fn, model)
    names = [layers] if isinstance(layers, str) else list(OrderedDict.fromkeys(layers))
    if not names:
        raise ValueError(f"{fn}: give at least one layer name (see layer_names(model))")
    targets = [_layer(fn, module, n) for n in names]
    x, _ = _images(fn, module, x)
    recorded = {}
    with module.inspecting(), contextlib.ExitStack() as stack:
        for name, target in zip(names, targets):
            def record(m, out, name=name):
                recorded[name] = np.array(out, copy=True)
            stack.enter_context(target.hooks(forward=record))
        module.forward(x)
    missing = [n for n in names if n not in recorded]
    if missing:
        raise ValueError(f"{fn}: layer(s) {', '.join(missing)} did not run in eval mode "
                         "(an auxiliary head runs only in training)")
    return OrderedDict((n, recorded[n]) for n in names)


# --------------------------------------------------------------------------- saliency

def saliency(model, x, y):
    """Saliency maps (Simonyan, Vedaldi & Zisserman 2014): how much each pixel moves the
    score of class y.

    x (N, C, H, W), y: a class index or N of them. Returns (N, H, W): the largest absolute
    value over the channels of d scores[i, y[i]] / d x[i] (the unnormalised class score,
    not the softmax probability). For inputs of another rank, (N, ...) of x's shape with
    no maximum taken.
    """
    fn = "saliency"
    module = _module(fn, model)
    x, k = _images(fn, module, x)
    y = _labels(fn, "y", y, len(x), k)
    with module.inspecting():
        _, dx = _class_gradient(module, x, y)
    magnitude = np.abs(dx)
    return magnitude.max(axis=1) if x.ndim == 4 else magnitude


# --------------------------------------------------------------------------- occlusion

def occlusion(model, x, y, patch=None, stride=None, fill=0.0, batch_size=64):
    """Occlusion sensitivity (Zeiler & Fergus 2014): the probability of class y while a
    patch of constant value covers part of the image.

    x (N, C, H, W); y: a class index or N of them; patch: the square side (int) or (PH, PW)
    of the patch (default: a quarter of the image's smaller side, at least 1); stride: its
    step (int or pair; default: half the patch, at least 1); fill: the patch's value, a
    number or one per channel (C,) (0 is the mean of standardised data: ZFNet's grey
    square); batch_size: occluded copies per forward pass.

    Returns (N, HO, WO) with HO = (H - PH) // SH + 1 (WO likewise): entry [n, i, j] is
    softmax(model(x'))[y[n]] for image n with rows i*SH .. i*SH + PH - 1 and columns
    j*SW .. j*SW + PW - 1 set to fill. Low values mark the regions the prediction needs.
    """
    fn = "occlusion"
    module = _module(fn, model)
    x, k = _images(fn, module, x)
    if x.ndim != 4:
        raise ValueError(f"{fn}: x must be images (N, C, H, W), got shape {x.shape}")
    y = _labels(fn, "y", y, len(x), k)
    N, C, H, W = x.shape
    if patch is None:
        patch = max(1, min(H, W) // 4)
    ph, pw = pair(fn, "patch", patch)
    if ph > H or pw > W:
        raise ValueError(f"{fn}: patch ({ph}, {pw}) is larger than the images ({H}, {W})")
    if stride is None:
        stride = (max(1, ph // 2), max(1, pw // 2))
    sh, sw = pair(fn, "stride", stride)
    batch_size = _count(fn, "batch_size", batch_size, 1)
    fill = np.asarray(fill, dtype=x.dtype)
    if fill.shape not in ((), (C,)):
        raise ValueError(f"{fn}: fill must be a number or one per channel ({C},), got shape "
                         f"{fill.shape}")
    fill = fill.reshape(-1, 1, 1) if fill.ndim else fill
    tops, lefts = range(0, H - ph + 1, sh), range(0, W - pw + 1, sw)
    positions = [(i, j) for i in tops for j in lefts]
    out = np.empty((N, len(positions)), dtype=x.dtype)
    with module.inspecting():
        for n in range(N):
            for start in range(0, len(positions), batch_size):
                chunk = positions[start:start + batch_size]
                batch = np.repeat(x[n:n + 1], len(chunk), axis=0)
                for b, (i, j) in enumerate(chunk):
                    batch[b, :, i:i + ph, j:j + pw] = fill
                log_p = log_softmax(_scores(fn, module.forward(batch)))
                out[n, start:start + len(chunk)] = np.exp(log_p[:, y[n]])
    return out.reshape(N, len(tops), len(lefts))


# --------------------------------------------------------------------------- class images

def _gaussian_blur(img, sigma):
    """Blur images (N, C, H, W) with a Gaussian of std sigma (pixels), each channel on its
    own, edges reflected (scipy.ndimage.gaussian_filter1d's 'reflect', radius 4 sigma), as a
    depthwise convolution: a column kernel, then a row kernel."""
    r = max(1, int(4 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    C = img.shape[1]
    padded = np.pad(img, ((0, 0), (0, 0), (r, r), (r, r)), mode="symmetric")
    param = {"stride": 1, "pad": 0, "groups": C}
    column = np.ascontiguousarray(np.broadcast_to(k.reshape(1, 1, -1, 1), (C, 1, 2 * r + 1, 1)),
                                  dtype=img.dtype)
    out, _ = FastConv.forward(np.ascontiguousarray(padded), column, None, param)
    row = np.ascontiguousarray(column.transpose(0, 1, 3, 2))
    out, _ = FastConv.forward(out, row, None, param)
    return out


def class_visualization(model, target, steps=100, lr=None, l2_reg=1e-3, jitter=None,
                        blur_every=10, blur_sigma=0.5, clip=None, input_shape=None, init=None,
                        seed=0, return_scores=False):
    """An image the model takes for class target: gradient ascent on the input (Simonyan et
    al. 2014), regularised as CS231n's assignment 3 does it (Yosinski et al. 2015).

    Each step t: shift the image by a random (dy, dx) in [0, jitter] (np.roll), compute
    g = d (score_target - l2_reg * ||img||^2) / d img, move img += lr * g / ||g||, shift it
    back, clamp it to clip = (low, high) if given, and every blur_every steps (t = 0,
    blur_every, ...; 0: never) blur it with a Gaussian of std blur_sigma pixels.

    Inputs:
    - target: the class index.
    - steps: number of steps.
    - lr: the length of each step, in the input's units (L2 norm of the change). Default
      CS231n's 25 for 3x224x224 images, scaled by sqrt(C*H*W / (3*224*224)) so that a step
      changes each pixel by the same amount on average at any size (0.52 at 1x8x8).
    - l2_reg: weight of the L2 penalty on the image.
    - jitter: the largest shift in pixels; default CS231n's 16 at 224 pixels, scaled with
      the image's smaller side (at least 1).
    - blur_every, blur_sigma: see above.
    - clip: (low, high) bounds of valid pixel values in the model's input units, a pair of
      numbers or of per-channel arrays (C,); None: no clamp.
    - input_shape: (C, H, W) of the image (default: the model's ``default_input``).
    - init: the starting image (C, H, W) (default: standard normal noise from seed).
    - seed: seeds the noise and the jitter.
    - return_scores: also return the target score at each step.

    Returns the image (C, H, W) in the model's dtype, or (image, scores) with scores
    (steps,) float64: the target score of the (shifted) image each step started from.
    """
    fn = "class_visualization"
    module = _module(fn, model)
    shape = input_shape if input_shape is not None else getattr(module, "default_input", None)
    if shape is None or len(tuple(shape)) != 3:
        raise ValueError(f"{fn}: input_shape must be (C, H, W) (the model has no "
                         f"default_input to use), got {shape!r}")
    shape = tuple(int(s) for s in shape)
    _, k = _images(fn, module, np.zeros((1,) + shape))
    target = int(_labels(fn, "target", target, 1, k)[0])
    steps = _count(fn, "steps", steps)
    blur_every = _count(fn, "blur_every", blur_every)
    blur_sigma = _positive(fn, "blur_sigma", blur_sigma)
    if isinstance(l2_reg, bool) or not isinstance(l2_reg, (int, float, np.number)) \
            or not 0 <= l2_reg < math.inf:
        raise ValueError(f"{fn}: l2_reg must be a number >= 0, got {l2_reg!r}")
    lr = _positive(fn, "lr", lr) if lr is not None else 25.0 * _size_scale(shape)
    if jitter is None:
        jitter = max(1, round(16 * min(shape[1:]) / _REFERENCE_SIDE))
    jitter = _count(fn, "jitter", jitter)
    rng = np.random.default_rng(seed)
    if init is None:
        img = rng.standard_normal((1,) + shape)
    else:
        img = np.asarray(init, dtype=np.float64)
        if img.shape != shape:
            raise ValueError(f"{fn}: init must have the image's shape {shape}, got {img.shape}")
        img = img[None]
    img = np.ascontiguousarray(img, dtype=module.dtype)
    if clip is not None:
        try:
            low, high = (np.asarray(c, dtype=module.dtype).reshape(-1, 1, 1) for c in clip)
        except (TypeError, ValueError):
            raise ValueError(f"{fn}: clip must be (low, high), numbers or one per channel, got "
                             f"{clip!r}") from None
        if low.shape[0] not in (1, shape[0]) or high.shape[0] not in (1, shape[0]) \
                or np.any(low >= high):
            raise ValueError(f"{fn}: clip must be (low, high) with low < high, numbers or "
                             f"{shape[0]} per channel, got {clip!r}")
        img = np.clip(img, low, high)
    scores = np.empty(steps, dtype=np.float64)
    with module.inspecting():
        for t in range(steps):
            dy, dx = (int(v) for v in rng.integers(0, jitter + 1, size=2))
            img = np.roll(img, (dy, dx), axis=(2, 3))
            out, grad = _class_gradient(module, img, np.array([target]))
            scores[t] = out[0, target]
            grad = grad - (2 * l2_reg) * img
            norm = float(np.sqrt(np.sum(grad.astype(np.float64) ** 2)))
            if norm > 0:
                img = img + (lr / norm) * grad
            img = np.roll(img, (-dy, -dx), axis=(2, 3))
            if clip is not None:
                img = np.clip(img, low, high)
            if blur_every and t % blur_every == 0:
                img = _gaussian_blur(img, blur_sigma)
    image = np.ascontiguousarray(img[0])
    return (image, scores) if return_scores else image


def fooling_image(model, x, target, lr=None, max_steps=1000):
    """Images close to x that the model classifies as target (Szegedy et al. 2014; CS231n
    assignment 3): from x, step along the gradient of the target score, normalised to
    length lr, and stop each image as soon as its prediction is the target.

    x (N, C, H, W); target: a class index or N of them; lr: the step length, in the input's
    units (default CS231n's 1 for 3x224x224 images, scaled by sqrt(C*H*W / (3*224*224)):
    0.02 at 1x8x8); max_steps: the most steps per image (CS231n stops at 100: its
    ImageNet network is fooled within a few tens of steps, a digits network needs a few
    hundred of these shorter steps).

    Returns the fooling images, x's shape, in the model's dtype (an image already
    classified as target is returned unchanged). NotFooledError (a RuntimeError) when an
    image still is not classified as target after max_steps steps.
    """
    fn = "fooling_image"
    module = _module(fn, model)
    x, k = _images(fn, module, x)
    target = _labels(fn, "target", target, len(x), k)
    max_steps = _count(fn, "max_steps", max_steps)
    lr = _positive(fn, "lr", lr) if lr is not None else 1.0 * _size_scale(x.shape[1:])
    fooled = x.copy()
    rows = np.arange(len(x))
    with module.inspecting():
        for step in range(max_steps + 1):
            scores, grad = _class_gradient(module, fooled, target)
            todo = scores.argmax(axis=1) != target
            if not todo.any():
                return fooled
            if step == max_steps:
                break
            norms = np.sqrt(np.sum(grad.reshape(len(x), -1).astype(np.float64) ** 2, axis=1))
            move = todo & (norms > 0)
            scale = np.where(move, lr / np.where(norms > 0, norms, 1.0), 0.0)
            fooled += (scale.reshape((-1,) + (1,) * (x.ndim - 1)) * grad).astype(x.dtype)
    i = int(rows[todo][0])
    raise NotFooledError(f"{fn}: image {i} is still classified as {int(scores[i].argmax())}, "
                         f"not {int(target[i])}, after {max_steps} steps of length {lr:g} "
                         "(raise max_steps or lr)")


# --------------------------------------------------------------------------- deconv

def deconv(model, x, layer, channel=None):
    """Project the strongest activation of one channel of a layer back to the input, by
    guided backpropagation (Springenberg et al. 2015), the variant of ZFNet's deconvnet
    (Zeiler & Fergus 2014) that this function implements.

    For each image: run the model, keep only the largest value of the channel in the
    layer's output (all else 0) and send it back through the network below the layer with
    the layers' own backward passes. Max pooling's backward routes it through the max
    locations (the deconvnet's "switches"), a convolution's backward is the transposed
    convolution (its filters flipped), and at every ReLU (and ReLU6) the rule is guided
    backpropagation's: a signal passes where the forward input was positive AND the
    signal is positive. (The deconvnet keeps only the second condition; plain
    backpropagation, saliency's, only the first.)

    x (N, C, H, W); layer: a name from layer_names(model) whose output has channels on
    axis 1; channel: the channel, or None for each image's most active channel (the one
    holding the largest value). Returns (N, C, H, W): the reconstruction in input space.
    """
    fn = "deconv"
    module = _module(fn, model)
    target_layer = _layer(fn, module, layer)
    x, _ = _images(fn, module, x)
    N = len(x)
    state = {}

    def record(m, out):
        state["out"] = out

    def inject(m, dout):
        return state["grad"]

    def guided(m, dout):
        return np.maximum(dout, 0)

    with module.inspecting(), contextlib.ExitStack() as stack:
        stack.enter_context(target_layer.hooks(forward=record, backward=inject))
        for m in module.modules():
            if isinstance(m, (ReLU, ReLU6)):
                stack.enter_context(m.hooks(backward=guided))
        scores = _scores(fn, module.forward(x))
        if "out" not in state:
            raise ValueError(f"{fn}: layer {layer!r} did not run in eval mode (an auxiliary "
                             "head runs only in training)")
        a = state["out"]
        if a.ndim < 2:
            raise ValueError(f"{fn}: layer {layer!r} outputs shape {a.shape}; it needs a "
                             "channel axis")
        flat = a.reshape(N, a.shape[1], -1)
        if channel is None:
            channels = flat.max(axis=2).argmax(axis=1)
        else:
            if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) \
                    or not 0 <= channel < a.shape[1]:
                raise ValueError(f"{fn}: channel must be an int in [0, {a.shape[1]}) for "
                                 f"layer {layer!r} (output {a.shape[1:]} per image), got "
                                 f"{channel!r}")
            channels = np.full(N, int(channel))
        rows = np.arange(N)
        where = flat[rows, channels].argmax(axis=1)
        grad = np.zeros_like(flat)
        grad[rows, channels, where] = flat[rows, channels, where]
        state["grad"] = grad.reshape(a.shape)
        return module.backward(np.zeros_like(scores))
