"""mvit networks (registered with vidrec.models.registry)."""
