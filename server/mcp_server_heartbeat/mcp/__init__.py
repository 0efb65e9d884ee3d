"""The MCP layer, thin on purpose: tools, resources, lifespan and signals
(:mod:`.server`); where we are stricter than the SDK, on its public API
(:mod:`.strict`: tools, argument errors, resource errors; :mod:`.middleware`:
capabilities); and the one private SDK use, answering malformed stdin lines
(:mod:`.stdio_lines`). The only package that imports ``mcp``."""
