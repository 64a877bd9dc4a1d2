"""The networks of the papers, one module each, and the baselines, one module per library (each a
spec helper plus thin constructors). Importing a module registers its constructors."""
