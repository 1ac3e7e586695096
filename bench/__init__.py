"""Tessera's benchmark harness: `make bench` / `make soak` (see bench/README.md).

Not part of the shipped package: it drives the services from outside, the way production runs them,
and compares them with bare gRPC baselines measured in the same run.
"""
