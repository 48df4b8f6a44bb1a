"""ekya: continuous learning of video analytics models on edge servers."""

import os

# Idle OpenMP threads sleep instead of spinning (must be set before torch loads OpenMP). On a busy
# or shared machine spinning threads starve each other and training slows down many times over.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
