"""Plots and the HTML run report, made from a run folder's files (imports core only)."""
