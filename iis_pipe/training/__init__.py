"""Training blocks: losses and the iterative click simulation over a batch."""
