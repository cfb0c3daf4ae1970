"""csn networks (registered with vidrec.models.registry)."""
