"""One module per revision of interlink's tables, oldest first (see the package docstring)."""
