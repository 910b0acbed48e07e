"""Runs on disk: the run store, the typed `summary.json` reader/writer with its schema
history and comparability rule, and the SQLite run index.

Imports plan, analysis and results; never locust.
"""
