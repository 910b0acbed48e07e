"""What people read: the summary digest, the HTML report and its charts, the comparison
and history pages, and the live terminal view.

Imports analysis, runs and plan; never locust.
"""
