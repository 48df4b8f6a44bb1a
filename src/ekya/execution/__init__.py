"""Execution: play plans window by window (simulate, emulate) and record what happened."""
