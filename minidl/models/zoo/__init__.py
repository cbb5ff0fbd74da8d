"""minidl.models.zoo: the lecture's architectures, built from minidl.nn.

Every builder takes num_classes, in_channels, its own options and dtype, and returns a
minidl.nn.Module whose parameter names follow torchvision's where torchvision has the model:

    alexnet, alexnet_lecture, zfnet, vgg11/13/16/19, googlenet, resnet18/34/50/101/152,
    preact_resnet18, wide_resnet50_2, resnext50_32x4d, resnext101_32x8d, se_resnet50,
    densenet121, mobilenet_v1, mobilenet_v2, shufflenet_v2_x1_0
    CIFAR size (32x32): resnet20/32/44/56/110, vgg11_cifar, vgg16_cifar,
    mobilenet_v1_cifar, mobilenet_v2_cifar

``get_model(name, **options)`` builds by name, ``list_models()`` lists the names.
Parameter counts and per-model choices: docs/architectures.md.
"""
from ._registry import get_model, list_models, register
from .alexnet import AlexNet, alexnet, alexnet_lecture, zfnet
from .densenet import DenseNet, densenet121
from .googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux, googlenet
from .mobilenet import (MobileNetV1, MobileNetV2, mobilenet_v1, mobilenet_v1_cifar, mobilenet_v2,
                        mobilenet_v2_cifar)
from .resnet import (BasicBlock, Bottleneck, PreActBlock, ResNet, preact_resnet18, resnet18,
                     resnet20, resnet32, resnet34, resnet44, resnet50, resnet56, resnet101,
                     resnet110, resnet152, resnet_cifar, resnext50_32x4d, resnext101_32x8d,
                     se_resnet50,
                     wide_resnet50_2)
from .shufflenet import ShuffleNetV2, shufflenet_v2_x1_0
from .vgg import VGG, CifarVGG, vgg11, vgg11_cifar, vgg13, vgg16, vgg16_cifar, vgg19

__all__ = ["get_model", "list_models", "register"] + list_models()
