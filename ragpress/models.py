"""Models as a user meets them: load any Hugging Face id, local path or offline alias once per
(name, device, dtype), share it between stages, see what is loaded, and free it.

>>> from ragpress import models
>>> lm = models.load_causal_lm("smollm2-135m")
>>> models.loaded()
[('causal_lm', 'smollm2-135m', 'cpu', 'torch.float32')]
>>> models.unload()          # every cached model (GPU memory too); stages reload on next use
1
"""

from ragpress.core.extras import require

require("torch", what="ragpress.models")

from ragpress.core.bundled import ALIASES, ModelLoadError, cache_dir, resolve_name
from ragpress.core.device import resolve_device, resolve_dtype
from ragpress.core.lm import CausalLM
from ragpress.core.loaders import load_causal_lm, load_embedder, load_spacy, load_tokenizer, loaded, unload

__all__ = [
    "ALIASES", "CausalLM", "ModelLoadError", "cache_dir", "load_causal_lm", "load_embedder", "load_spacy",
    "load_tokenizer", "loaded", "resolve_device", "resolve_dtype", "resolve_name", "unload",
]
