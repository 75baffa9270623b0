"""tinyjax.example_libraries: JAX's minimal neural-network (``stax``) and optimizer
(``optimizers``) libraries. Import them as ``from tinyjax.example_libraries import
stax, optimizers``."""
