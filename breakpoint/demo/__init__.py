"""The embedded demo: a target of known capacity and `breakpoint demo` (run.py).

The target is service.py (the M/M/c workers), wire.py and server.py (its asyncio HTTP/1.1
service) and target.py (its process). The target imports only the standard library and
`breakpoint.errors`; the demo command imports plan, output and load to run a search.
"""
