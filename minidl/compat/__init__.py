"""Compatibility name sets for course code.

``minidl.compat.cs231n``: the Stanford CS231n assignment-2 functions and classes
(affine_forward, conv_forward_fast, dropout_forward with p = keep probability, Solver,
FullyConnectedNet, ...) with CS231n's signatures, over minidl's implementations.
The EECS 498-007 names are minidl's own API (minidl.layers, minidl.models, minidl.solver).
"""
