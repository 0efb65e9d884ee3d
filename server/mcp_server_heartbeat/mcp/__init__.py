"""The MCP layer, thin on purpose: tools, resources, lifespan and signals
(:mod:`.server`), and where we are stricter than the SDK (:mod:`.strict`).
The only package that imports ``mcp``."""
