"""Running asgilook: the launcher, uvicorn's protocol, start-up, workers and logs."""
