"""Request bodies by capability: one set of pydantic models for the API, the CLI and the services.

Field-level rules live here; rules that need stored state (does the plan exist, does the
currency match) live in the services. Either way the error names the field.
"""
