"""breakpoint: find where each user segment breaks under load, and whether a release moved it.

Importing this package never imports locust (which monkey-patches the standard library with
gevent): only the modules that drive load (drive, shape, recorder, emulate) do.
"""

__version__ = "0.1.0"
