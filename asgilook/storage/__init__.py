"""The storage directory: its layout, stored files, uploads and their faults."""
