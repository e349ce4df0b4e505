"""The command-line mains behind the top-level scripts: ``train.py``, ``export.py`` and ``predict.py``.

Each parses and validates its options before anything heavy is imported, then calls the library. This package
sits above every other one: it may import any of them, and none imports it.
"""
