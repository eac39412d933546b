"""Figures for the book, one module per concern (data, model, training, interpretability)."""
