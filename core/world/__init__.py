"""The embedded toy-shapes world: procedural images and captions (see core/world/render.py)."""
