"""Compatibility name sets for course code.

``minidl.compat.cs231n``: the Stanford CS231n assignment-2 package (cs231n.layers,
cs231n.fast_layers, ..., cs231n.classifiers.fc_net) with CS231n's names, signatures and NumPy
type promotion, over minidl's implementations; ``python -m minidl.compat.cs231n install DIR``
makes the course's own notebooks run on it unchanged.
The EECS 498-007 names are minidl's own API (minidl.layers, minidl.models, minidl.solver).
"""
