"""The embedded demo: a target server of known capacity (target.py) and its bundled scenario."""
