"""Adapters for LlamaIndex and LangChain, imported only on demand (optional extras)."""
