"""Helpers shared by test modules (conftest.py files cannot be imported by name: several exist)."""

from psirel.scene.files import scene_args

__all__ = ["scene_args"]
