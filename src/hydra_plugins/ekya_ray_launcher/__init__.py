"""Hydra launcher ``hydra/launcher=ekya_ray``: every cell of a multirun batch runs as one Ray task.

Hydra finds it through the ``hydra_plugins`` namespace package (no ``__init__.py`` one level up).
"""
