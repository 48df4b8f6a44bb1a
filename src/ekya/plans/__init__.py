"""Scheduling core (torch-free): share curves, the window-accuracy model, schedulers, packing, playback."""
