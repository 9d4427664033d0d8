"""Collectors: read-only fact gathering from one target, cached per run, every call bounded.

One module (or package) per target kind: ``host`` here; ``aws`` and ``kubernetes``
import their heavy clients lazily so a host-only agent never loads them.
"""
