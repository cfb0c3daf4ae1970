"""Released timesformer weights: converters of each release layout and the registry entries (filled in by its family)."""
