"""One module per command; each exposes ``register(cli)`` and is discovered by ``main``."""
