"""x3d networks (registered with vidrec.models.registry)."""
