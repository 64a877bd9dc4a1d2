"""leukcore."""
