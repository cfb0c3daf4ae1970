"""tsm networks (registered with vidrec.models.registry)."""
