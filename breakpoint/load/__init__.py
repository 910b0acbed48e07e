"""Driving load with Locust: run settings, the run and its worker processes, the controller,
wrapped users, Poisson arrivals, the recorder and generator health, the run writer, the host
guard and preflight checks (the layout: docs/design.md#code-layout).

The only layer that imports locust or gevent. May import plan, analysis (the search and the
step verdicts), runs (run-folder names and JSON writing) and results.
"""
