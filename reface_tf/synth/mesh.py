"""Named index sets of MediaPipe's 478-point face mesh, as ordered polygons where the order matters.

"Left"/"right" here are the subject's own sides (the subject's left eye is on the image's right), matching
the CelebAMask-HQ ``l_``/``r_`` labels as used by :mod:`reface_tf.synth.segmaps`.
"""

from __future__ import annotations

from reface_tf.faces.align import FACE_OVAL

# Closed loops, in drawing order.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)  # image left
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)  # image right
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
UPPER_LIP = LIPS_OUTER_UPPER + tuple(reversed(LIPS_INNER_UPPER))
LOWER_LIP = LIPS_OUTER_LOWER + tuple(reversed(LIPS_INNER_LOWER))
MOUTH_INNER = LIPS_INNER_UPPER + tuple(reversed(LIPS_INNER_LOWER[1:-1]))
# Unordered: the nose region is their convex hull.
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 48, 278, 129, 358, 49, 279, 102, 331, 122, 351,
        193, 417, 240, 460, 97, 326, 99, 328, 115, 344, 220, 440)

# Procedure control points.
NOSE_MIDLINE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2)
NOSE_ALA_RIGHT = (48, 64, 98, 102, 49, 129, 115, 220, 240, 219)  # image left of the midline
NOSE_ALA_LEFT = (278, 294, 327, 331, 279, 358, 344, 440, 460, 439)
NOSE_TIP = (1, 4, 19, 45, 275, 44, 274)
CHIN = 152
FOREHEAD = 10
# Lower face oval from ear level round the chin (both sides), the part a jawline tightening reshapes.
JAW = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
CHEEKS = (205, 425, 50, 280, 187, 411, 36, 266, 117, 346)

__all__ = [name for name in dir() if name.isupper()] + ["FACE_OVAL"]
