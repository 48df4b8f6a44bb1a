"""Builders shared by test modules (imported as ``helpers.<module>``; pytest puts tests/ on sys.path)."""
