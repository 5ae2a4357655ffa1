"""Featurisers shared by several models (one implementation each, never copied into model folders)."""
