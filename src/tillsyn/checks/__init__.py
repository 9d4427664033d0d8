"""Check plugins: pure functions from facts to results, grouped by target and family.

A check module never does I/O itself and never imports boto3 or kubernetes: it asks
the collector's fact API, which does the reading, caching and timeouts.
"""
