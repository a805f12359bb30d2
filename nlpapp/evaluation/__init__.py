"""Evaluation: metrics from the reference libraries, bootstrap intervals, ``nlpapp eval``."""
