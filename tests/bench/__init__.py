"""The benchmark harness (bench/), exercised at toy sizes."""
