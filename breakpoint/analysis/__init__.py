"""Pure numpy/scipy analysis: the breaking-point criteria, levels, fits, break placement,
description, the search policy and step sizing, and release-over-release statistics.

Imports plan and results only: no locust, gevent, files or network.
"""
