"""Page routers, one per area of the lifecycle."""
