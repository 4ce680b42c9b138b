"""qa model plugin: nearest centroid on word presence (numpy). See :mod:`.plugin`."""
