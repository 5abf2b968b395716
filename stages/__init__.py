"""image-to-urdf pipeline stages.

Conventions shared by every stage (stated once, here):

- Units are SI: metres, kilograms, radians.
- The URDF base frame is right-handed and z-up, with its origin at the bottom centre of the
  object's bounding box and +x pointing to the object's front (the side the photo mostly shows).
- The camera frame follows OpenCV: x right, y down, z forward.
- ``T_a_b`` is a ``(4, 4) float`` that maps points from frame b into frame a.
- At stage boundaries images are ``(H, W, 3) uint8`` RGB and masks ``(H, W) bool``; files on
  disk are PNG (masks stored as 0/255 single channel).
- All meshes passed between stages are in the base frame at rest, in metres.
- Every stage is ``stages.<stage>.run(cfg, ..., out_dir) -> <Stage>Result``; the result is a frozen
  dataclass of output paths plus small metadata. A stage writes only under ``out_dir`` and its
  writes are atomic.
"""
