"""The composition root: CLI, local launcher, Ray job entry point, Dockerfile and Serve configs."""
