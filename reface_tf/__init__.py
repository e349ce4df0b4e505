"""ReFace-TF: learn face-to-face image translations (Pix2Pix and siblings) in TensorFlow / Keras 3."""

__version__ = "0.1.0"
