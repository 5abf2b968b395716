"""Third-party benchmark set: articulated MJCF objects from the metaworld and robosuite wheels.

``wheels`` downloads and extracts the wheels into a cache, ``mjcf_to_urdf`` converts each object
to a URDF package (checked against MuJoCo's forward kinematics), ``conditions`` draws the photo
conditions and ``build`` writes the cases in ``benchmarks/build_set.py``'s layout.
"""
