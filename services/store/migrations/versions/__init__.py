"""One module per migration, applied in the order their `down_revision`s chain them."""
