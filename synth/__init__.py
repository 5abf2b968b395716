"""Procedural articulated objects and a deterministic product-photo renderer.

``synth.objects.make_object(category, seed)`` builds a box-like articulated object (cabinet,
drawer unit, microwave, laptop, ...) with watertight coloured meshes and ground-truth joints in
the URDF base frame; ``synth.render`` photographs it (RGB, foreground and per-part masks, depth)
and makes articulation clips. Tests, benchmarks and the example assets are built from these.
"""
