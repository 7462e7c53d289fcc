"""lifecycled: lifecycle management for ML models served by NVIDIA Triton."""

__version__ = "0.1.0"
