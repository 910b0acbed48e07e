"""Queueing truth and simulated runs, for tests and benchmarks: Erlang C/B, M/M/c/K,
search simulation and run builders.

Imports plan, analysis and results; never locust.
"""
