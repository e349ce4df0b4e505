"""Speed, memory and serving-latency benchmarks of ReFace-TF (not tests: nothing here asserts timings)."""
