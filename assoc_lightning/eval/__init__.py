"""Evaluation: metric math (pure functions) and Lightning callbacks that call ``embed()``."""
