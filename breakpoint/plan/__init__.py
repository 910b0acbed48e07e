"""What a run will do, decided before any load: the plan of steps, the device/network
profiles and the network model behind them.

Pure: imports only `breakpoint.errors`; no locust, no I/O beyond reading profile files.
"""
