"""timesformer networks (registered with vidrec.models.registry)."""
