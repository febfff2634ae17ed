"""Example workers: `tether worker examples.hello:WorkerSettings`."""
