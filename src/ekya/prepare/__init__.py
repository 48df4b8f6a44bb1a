"""Dataset preparation: video ingestion (decode, detect, crop, label, write samplelists) and checks."""
