"""asgilook's benchmarks: each runs with one command and prints ratios against a
baseline measured in the same run.

Benchmarks (`python -m bench.<name>`): speed, catalog_scale, stampede,
upload_memory. What they share: processes (redis-server, uvicorn), load and
wrk (requests), pictures (images to upload), figures (best rounds,
percentiles, tables), filling (storage directories of many images). They use
asgilook only as its users do: HTTP, `asgilook.config.Config`,
`python -m asgilook reindex` and the storage layout the README documents.
"""
