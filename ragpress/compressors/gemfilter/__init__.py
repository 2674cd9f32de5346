"""GemFilter (Shi et al., 2024, "Discovering the Gems in Early Layers: Accelerating Long-Context LLMs
with 1000x Input Token Reduction", arXiv:2409.17422): early-layer attention selects tokens.
:class:`GemFilter` keeps the selected source tokens as exact spans; its generator with both passes
is :class:`ragpress.generators.gemfilter.GemFilterGenerator`."""

from ragpress.core.extras import require

require("torch", what="GemFilter")

from ragpress.compressors.gemfilter.stage import GemFilter, GemFilterSettings, filter_layer_index, select_tokens

__all__ = ["GemFilter", "GemFilterSettings", "filter_layer_index", "select_tokens"]
