"""Dataset preparation: video ingestion (decode, detect, crop, label, write samplelists) and Cityscapes polygons.

Both write samplelists.
"""
