"""Data pipeline: annotations → sampling → decoding → transforms → datasets."""
