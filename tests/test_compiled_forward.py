"""net(x) in eval mode under PyNative runs one compiled graph per shape, with the eager path's numbers."""
from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest

from unet3plus import UNet3Plus, load_checkpoint


def batch(*shape, seed=0):
    return ms.Tensor(np.random.default_rng(seed).random(shape, dtype=np.float32))


def eager(net, x):
    net.compiled_eval = False
    try:
        return net(x).asnumpy()
    finally:
        net.compiled_eval = True


@pytest.fixture
def compiled_calls(monkeypatch):
    """Counts the calls that went through the compiled forward."""
    calls = []
    original = UNet3Plus._compiled_construct

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(UNet3Plus, "_compiled_construct", counting)
    return calls


@pytest.mark.compat
def test_compiled_default_matches_eager_across_a_shape_change_and_training_mode(golden_checkpoint, compiled_calls):
    ms.set_seed(0)
    net = UNet3Plus()
    load_checkpoint(net, golden_checkpoint)
    net.set_train(False)
    weights = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    trainable = [p.name for p in net.trainable_params()]
    eval_logits = {}
    for shape in [(2, 3, 64, 64), (1, 3, 32, 48), (2, 3, 64, 64)]:  # new shape, then back to the first
        x = batch(*shape)
        compiled = eval_logits[shape] = net(x).asnumpy()
        assert compiled.shape == (shape[0], 1, *shape[2:])
        np.testing.assert_allclose(compiled, eager(net, x), rtol=0, atol=1e-5)
    assert len(compiled_calls) == 3
    assert not net.training and [p.name for p in net.trainable_params()] == trainable
    for p in net.get_parameters():  # BatchNorm statistics included
        np.testing.assert_array_equal(p.asnumpy(), weights[p.name], err_msg=p.name)

    net.set_train(True)  # training mode: the ordinary eager call (BatchNorm on batch statistics)
    train_logits = net(batch(2, 3, 64, 64)).asnumpy()
    assert len(compiled_calls) == 3
    assert np.abs(train_logits - eval_logits[(2, 3, 64, 64)]).max() > 1e-3  # batch, not running, statistics
    assert np.abs(net.bn1d_1.moving_mean.asnumpy() - weights["bn1d_1.moving_mean"]).max() > 0


def test_loading_other_weights_after_the_first_call_is_seen(compiled_calls):
    """Parameter.set_data gives parameters new storage; the compiled forward must not keep the old weights."""
    net = UNet3Plus()
    net.set_train(False)
    x = batch(1, 3, 32, 32)
    before = net(x).asnumpy()
    ms.set_seed(1)
    other = UNet3Plus()
    load_checkpoint(net, {p.name: ms.Tensor(p.asnumpy()) for p in other.get_parameters()})
    after = net(x).asnumpy()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, eager(net, x), rtol=0, atol=1e-5)
    assert len(compiled_calls) == 2


def test_gradients_through_the_compiled_forward_equal_eager_gradients():
    net = UNet3Plus()
    net.set_train(False)
    x = batch(1, 3, 32, 32)
    weights = net.trainable_params()
    gradient = ms.value_and_grad(lambda inputs: net(inputs).sum(), grad_position=0, weights=weights)
    loss, (input_grad, weight_grads) = gradient(x)
    net.compiled_eval = False
    eager_loss, (eager_input_grad, eager_weight_grads) = gradient(x)
    np.testing.assert_allclose(float(loss.asnumpy()), float(eager_loss.asnumpy()), rtol=1e-5)
    np.testing.assert_allclose(input_grad.asnumpy(), eager_input_grad.asnumpy(), rtol=1e-4, atol=1e-5)
    for mine, theirs, p in zip(weight_grads, eager_weight_grads, weights):
        np.testing.assert_allclose(mine.asnumpy(), theirs.asnumpy(), rtol=1e-4, atol=1e-4, err_msg=p.name)


def test_switch_off_and_bad_input_keep_the_eager_behaviour(compiled_calls):
    net = UNet3Plus()
    net.set_train(False)
    net.compiled_eval = False
    net(batch(1, 3, 32, 32))
    assert compiled_calls == []
    net.compiled_eval = True
    with pytest.raises(ValueError, match="divisible by 16"):
        net(batch(1, 3, 30, 32))
