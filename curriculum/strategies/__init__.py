"""One strategy per file; each registers itself with `curriculum.registry.register`."""
