"""Local tooling around the stack: read template.yaml, create its resources on moto, benchmarks."""
