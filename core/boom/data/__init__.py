"""Datasets: loading the raw sources, BOOM's OOD splits, 3D geometries and per-task input folders."""
