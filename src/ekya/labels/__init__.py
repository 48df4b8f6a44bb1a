"""Labels: COCO numberings and the teachers ("golden models") that label a stream's samples."""
