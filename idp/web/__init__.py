"""The Flask layer: blueprints that translate HTTP to the protocol cores and back."""
