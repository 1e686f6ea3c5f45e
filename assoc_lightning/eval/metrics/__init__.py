"""Metric math as pure functions on feature tensors / arrays; no Lightning in here."""
