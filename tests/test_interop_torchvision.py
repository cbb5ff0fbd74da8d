"""Parity with torchvision: every zoo builder that has a torchvision twin takes that twin's
randomly initialised weights (batch-norm statistics randomised) through
minidl.interop.load_torch_state_dict, gives the same eval logits (float64 within 1e-9,
float32 within 1e-4 of the largest logit), and hands back torchvision's state_dict key for
key through to_torch_state_dict; and it initialises its parameters as the twin's builder
does (the same constants, distributions and scales, parameter by parameter).

torchvision is not in the CI environment's test extras: the torch there is 2.13.0 (CPU),
and the torchvision release on this machine (0.29.1) needs torch 2.14.1, a 5.5 GB CUDA
build. .ci/torchvision-parity installs that pair into a separate virtual environment and
runs this file there (CI runs it after the main suite; see docs/decisions.md).
"""
import gc

import numpy as np
import pytest

try:
    import torch
    import torchvision
except ImportError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"torchvision is not installed ({e}); this environment's torch has no "
                "matching torchvision here: run .ci/torchvision-parity, which installs "
                "torch 2.14.1 + torchvision 0.29.1 into a separate venv",
                allow_module_level=True)

from minidl import interop, nn  # noqa: E402
from minidl.models import zoo  # noqa: E402

# (minidl builder, its options, torchvision builder, its options, input size). Inputs are
# small where the architecture takes them (the adaptive poolings of AlexNet and VGG then
# repeat values; every stride-2 path still runs), and ResNet-18 runs at 224 as well.
TWINS = [
    ("alexnet", {}, "alexnet", {}, 64),
    ("vgg11", {}, "vgg11", {}, 32), ("vgg13", {}, "vgg13", {}, 32),
    ("vgg16", {}, "vgg16", {}, 32), ("vgg19", {}, "vgg19", {}, 32),
    ("vgg11", {"batch_norm": True}, "vgg11_bn", {}, 32),
    ("vgg13", {"batch_norm": True}, "vgg13_bn", {}, 32),
    ("vgg16", {"batch_norm": True}, "vgg16_bn", {}, 32),
    ("vgg19", {"batch_norm": True}, "vgg19_bn", {}, 32),
    ("googlenet", {}, "googlenet", {"aux_logits": False, "init_weights": True}, 64),
    ("googlenet", {"aux_logits": True}, "googlenet", {"aux_logits": True, "init_weights": True},
     64),
    ("resnet18", {}, "resnet18", {}, 64), ("resnet18", {}, "resnet18", {}, 224),
    ("resnet34", {}, "resnet34", {}, 64),
    ("resnet50", {}, "resnet50", {}, 64), ("resnet101", {}, "resnet101", {}, 64),
    ("resnet152", {}, "resnet152", {}, 64),
    ("wide_resnet50_2", {}, "wide_resnet50_2", {}, 64),
    ("resnext50_32x4d", {}, "resnext50_32x4d", {}, 64),
    ("resnext101_32x8d", {}, "resnext101_32x8d", {}, 64),
    ("densenet121", {}, "densenet121", {}, 64),
    ("mobilenet_v2", {}, "mobilenet_v2", {}, 64),
    ("shufflenet_v2_x1_0", {}, "shufflenet_v2_x1_0", {}, 64),
]


def _case_id(case):
    name, opts, size = case[0], case[1], case[4]
    return name + "".join(f"-{k}" for k in opts) + ("-224" if size == 224 else "")


def _randomise_batch_norm(tmodel, x, generator):
    """BN affine parameters drawn at random; running statistics measured on x in training
    mode (activations keep their scale even where torchvision's initialisation shrinks them,
    as GoogLeNet's std 0.01), then randomised: each variance gets half the layer's mean
    variance added (a channel that happened to be near-constant on this tiny batch would
    otherwise be scaled up by 1/sqrt(eps) and make the net so ill-conditioned that torch's
    own float32 misses its float64 by 1e-4) and is scaled by U(0.8, 1.25); means move by 0.1
    standard deviations; counters get random values (they must travel too)."""
    bns = [m for m in tmodel.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=generator)
            m.bias.normal_(0.0, 0.2, generator=generator)
            m.momentum = 1.0
        tmodel.train()
        tmodel(x)
        for m in bns:
            m.momentum = 0.1
            var = m.running_var
            var.add_(0.5 * var.mean()).mul_(torch.empty_like(var).uniform_(0.8, 1.25,
                                                                           generator=generator))
            m.running_mean.add_(0.1 * var.sqrt() * torch.randn(var.shape, generator=generator,
                                                               dtype=var.dtype))
            m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=generator)))
    tmodel.eval()


def _rel(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("case", TWINS, ids=[_case_id(c) for c in TWINS])
def test_torchvision_weights_give_minidl_the_same_logits_and_round_trip(case):
    name, opts, tv_name, tv_opts, size = case
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    tmodel = getattr(torchvision.models, tv_name)(**tv_opts).double()
    x = np.random.default_rng(2).standard_normal((2, 3, size, size))
    xt = torch.from_numpy(x)
    _randomise_batch_norm(tmodel, xt, generator)
    with torch.no_grad():
        ref64 = tmodel(xt).numpy()
    sd = tmodel.state_dict()

    model = zoo.get_model(name, **opts, dtype=np.float64)
    interop.load_torch_state_dict(model, sd)  # strict: torchvision's keys, key for key
    model.eval()
    err64 = _rel(model(x), ref64)

    back = interop.to_torch_state_dict(model)
    assert list(back) == list(sd)  # the same keys in the same order
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    tmodel.load_state_dict(back, strict=True)

    model.astype(np.float32)
    tmodel.float()
    with torch.no_grad():
        ref32 = tmodel(xt.float()).numpy()
    err32 = _rel(model(x.astype(np.float32)), ref32)
    print(f"\n{_case_id(case)} {size}x{size}: float64 {err64:.1e}, float32 {err32:.1e}")
    assert err64 <= 1e-9
    assert err32 <= 1e-4
    del tmodel, sd, back, model
    gc.collect()



def _kurtosis(a):
    """E[(a - mean)^4] / var^2: 1.8 for a uniform distribution, 3 for a normal one (the
    sample value's spread is about sqrt(24 / n), 0.15 at a thousand values)."""
    d = a - a.mean()
    return float(np.mean(d ** 4) / np.mean(d ** 2) ** 2)


# One twin per builder class and option that changes the rule: the deeper VGGs, ResNets and
# ResNeXts run the same class's loop as the ones here (and drawing 140M parameters twice
# takes tens of seconds on two cores).
INIT_CASES = [c for c in TWINS if _case_id(c) in {
    "alexnet", "vgg11", "vgg11-batch_norm", "googlenet", "googlenet-aux_logits", "resnet18",
    "resnet50", "wide_resnet50_2", "resnext50_32x4d", "densenet121", "mobilenet_v2",
    "shufflenet_v2_x1_0"}]


@pytest.mark.parametrize("case", INIT_CASES, ids=[_case_id(c) for c in INIT_CASES])
def test_zoo_builders_initialise_as_torchvision_builders(case):
    """Parameter by parameter: the same constants where torchvision's are constant, else the
    same kind of distribution (uniform or normal), scale and centre."""
    name, opts, tv_name, tv_opts, _ = case
    torch.manual_seed(0)
    theirs = {k: v.numpy() for k, v in
              getattr(torchvision.models, tv_name)(**tv_opts).state_dict().items()}
    nn.manual_seed(0)
    ours = zoo.get_model(name, **opts).state_dict()
    assert list(ours) == list(theirs)
    for key, t in theirs.items():
        a = ours[key].astype(np.float64)
        t = t.astype(np.float64)
        if t.min() == t.max():
            assert np.all(a == t.flat[0]), key
        elif t.size >= 1000:
            assert 0.9 < a.std() / t.std() < 1.1, (key, a.std(), t.std())
            assert abs(a.mean() - t.mean()) < 0.1 * t.std(), key
            assert abs(_kurtosis(a) - _kurtosis(t)) < 0.6, (key, _kurtosis(a), _kurtosis(t))
        elif t.size >= 30:
            assert 0.6 < a.std() / t.std() < 1.6, (key, a.std(), t.std())
    del theirs, ours
    gc.collect()
