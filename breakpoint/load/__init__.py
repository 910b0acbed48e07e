"""Driving load with Locust: run settings, the local, master and worker runners, the
controller, wrapped users, Poisson arrivals, the recorder, emulation and the host guard.

The only layer that imports locust or gevent. May import plan, analysis (the search and
the step verdicts), runs (the store writer) and results.
"""
