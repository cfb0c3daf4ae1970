"""videomae networks (registered with vidrec.models.registry)."""
