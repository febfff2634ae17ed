"""tether: a durable, Redis-backed control plane for AI and backend workflows."""
