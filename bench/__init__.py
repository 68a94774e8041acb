"""asgilook's benchmarks: one command each, ratios against a baseline of the same run.

Benchmarks (`python -m bench.<name>`): speed, catalog_scale, stampede,
upload_memory, simd (Pillow against Pillow-SIMD, each in a virtual
environment of its own, calling asgilook.imaging directly), events (2 000
SSE subscribers over two workers: delivery from each 201, memory per
subscriber, the cached thumbnail's rate beside them, shutdown with every
stream open). What they share: processes (redis-server, uvicorn), load and
wrk (requests), pictures (images to upload), figures (best rounds,
percentiles, tables), filling (storage directories of many images),
subscribers and deliveries (the events' client processes and verdicts). They use
asgilook as its users do: HTTP, `asgilook.config.Config`, `python -m asgilook
reindex` and the storage layout the README documents; only catalog_scale
reads the catalog's table and makes a page cursor (`asgilook.http.paging`), to find
images deep in a million without walking the list.
"""
