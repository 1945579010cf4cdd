"""Renderers: each takes the Publication and the Theme and returns {relative path: bytes};
none writes an output file (output.py does). They may fill the caches under .pressroom/cache/:
derived files (derived.py: the cover, email PNGs, font subsets) and compiled templates."""
