"""Training zoo models: a float32 ResNet-20 step through FastConv, and Solver on digits."""
import numpy as np

import minidl
from minidl import nn
from minidl.layers.conv import FastConv
from minidl.losses import softmax_loss
from minidl.models import zoo
from minidl.solver import Solver, read_checkpoint


def test_resnet20_float32_training_step_runs_through_fastconv(monkeypatch):
    calls = {"forward": 0, "backward": 0}
    forward, backward = FastConv.run, FastConv.backward  # nn.Conv2d runs its kept plan

    def counted(name, fn):
        def wrapper(*args):
            calls[name] += 1
            return fn(*args)
        return staticmethod(wrapper)

    monkeypatch.setattr(FastConv, "run", counted("forward", forward))
    monkeypatch.setattr(FastConv, "backward", counted("backward", backward))
    nn.manual_seed(0)
    model = zoo.resnet20(num_classes=10)
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=8)
    opt = nn.Optimizer(model, "adam", {"learning_rate": 1e-2})
    before = {k: v.copy() for k, v in model.params.items()}
    losses = []
    for _ in range(3):
        opt.zero_grad()
        scores = model(x)
        loss, dscores = softmax_loss(scores, y)
        dx = model.backward(dscores)
        opt.step()
        losses.append(float(loss))
        assert scores.dtype == dx.dtype == np.float32
    assert convs == 19 and calls == {"forward": 3 * convs, "backward": 3 * convs}
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert all(not np.array_equal(v, before[k]) for k, v in model.params.items())
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    if minidl._kernels.compiled_available():
        assert minidl.kernels_info()["active"]


def test_solver_trains_a_zoo_model_on_the_digits(tmp_path):
    from minidl.data import load_digits

    np.random.seed(0)
    nn.manual_seed(0)
    data = load_digits()
    model = nn.ClassifierModel(zoo.get_model("resnet_cifar", depth=8, width=8, in_channels=1))
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 3e-3},
                    num_epochs=2, batch_size=50, num_train_samples=300, seed=0,
                    checkpoint_name=str(tmp_path / "resnet8"), verbose=False)
    solver.train()
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    assert solver.best_val_acc >= 0.8 and test_acc >= 0.8, (solver.best_val_acc, test_acc)
    checkpoint = read_checkpoint(tmp_path / "resnet8_epoch_2.npz")
    assert checkpoint["model_class"] == "minidl.nn.classifier.ClassifierModel"
    assert list(checkpoint["params"]) == list(model.params)
    assert list(checkpoint["model_state"]["buffers"]) == [n for n, _ in
                                                          model.module.named_buffers()]
