"""The HTML report: charts (plots.py) and the page (render.py, templates/)."""
