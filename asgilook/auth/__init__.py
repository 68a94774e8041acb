"""Who may do what: the service key, and the delete token of each upload."""
