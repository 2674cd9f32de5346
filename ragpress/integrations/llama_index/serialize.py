"""How ragpress objects inside LlamaIndex components serialise."""

from pydantic import PlainSerializer

# Stages serialise as ragpress does (type and settings), so LlamaIndex's to_dict/to_json show them.
AsDict = PlainSerializer(lambda stage: stage.to_dict(), return_type=dict)
