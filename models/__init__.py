"""Model artifacts shipped with fer-edge; installed as the package edge.models."""
