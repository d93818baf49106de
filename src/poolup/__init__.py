"""poolup: how much classification quality is lost when images are stored average-pooled
and interpolated back to full size, and how much disk is saved."""

__version__ = "0.1.0"
