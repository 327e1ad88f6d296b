"""Snapshot tables written by the attainment engine and read by the dashboards (see reports/engine.py)."""
