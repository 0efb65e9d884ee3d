"""One session's operations over a store: start, heartbeat, claim, release,
end, and the readers of sessions with their liveness. No MCP here."""
