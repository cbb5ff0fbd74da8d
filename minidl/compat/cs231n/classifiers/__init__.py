"""CS231n ``cs231n/classifiers/``: fc_net (TwoLayerNet, FullyConnectedNet) and cnn
(ThreeLayerConvNet). As in the course, the package itself exports nothing."""
