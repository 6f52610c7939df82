"""What runs a method on files: one image (`single`), many (`batch`, `beam`), and the outputs (`report`)."""
