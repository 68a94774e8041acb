"""What wraps the resources: the gate before Falcon, errors, media types, paging."""
