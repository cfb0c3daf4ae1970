"""slowfast networks (registered with vidrec.models.registry)."""
