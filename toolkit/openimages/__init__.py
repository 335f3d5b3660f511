"""Open Images: addresses, metadata files, ontology and the columnar label cache."""
