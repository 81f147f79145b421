"""Developer tools that live beside the product, never inside it (nothing here is imported by `appliance`)."""
