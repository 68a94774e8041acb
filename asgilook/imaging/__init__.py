"""Pillow and image formats: checks before decoding, conversion, renders apart."""
