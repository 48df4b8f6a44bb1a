"""ekya's Hydra configs (a package so Hydra finds them in an installed copy; the YAML files are package data)."""
