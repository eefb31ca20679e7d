"""Reference predictors the transformer must beat, on exactly the study's splits (scikit-learn, no torch)."""
