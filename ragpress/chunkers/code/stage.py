"""Code chunking at syntactic units, with an LLM choosing partition points where syntax cannot.

Glasz et al., "Can LLMs Replace Humans During Code Chunking?" (arXiv 2506.19897, 2025). The paper
compares naive (whole file, fixed-length), structure-based (single module, multiple modules) and
expert-driven (human, LLM) partitions of legacy MUMPS and assembly files under token limits of
512-4096, and finds that partition points chosen by an LLM shown the code match human experts and
give better downstream documentation. We combine the two families:

1. Structure (paper Sec. "Structure-Based"): with a tree-sitter grammar, the file is cut at its
   syntactic units (functions, classes, methods); code between units (imports, constants, a class
   header) becomes chunks of its own, so the chunks cover the whole file. A unit over
   ``max_tokens`` is cut at its inner units if it has any (a class at its methods).
2. LLM partitions (paper Sec. "Expert-Driven"/LLM partitions): a unit still over the limit, or a
   whole file in a language without a grammar (the paper's MUMPS and assembly), is shown to
   ``model`` as numbered lines and the model replies with the line numbers where new chunks begin.
   Replies are repaired (out-of-range, duplicate and unordered numbers dropped or sorted); where
   none is usable, or a piece would still be over the limit, the cut falls back to the shallowest
   statement boundary that fits (column-0 lines and lines after blank lines without a grammar),
   then to a fixed window of whole lines. Nothing raises on a bad reply.

Deviations: token counts use ``tokenizer`` (default the SmolLM2 tokenizer, the paper used GPT-4o's);
the LLM sees at most ``2 * max_tokens`` tokens of code at a time (the paper's models saw whole
files), and we could not retrieve the paper's exact prompt wording, so ours paraphrases its task.
A single line longer than ``max_tokens`` (minified code) is cut at token boundaries (``split="tokens"``),
so every chunk is within the limit. ``\r``, ``\r\n`` and ``\n`` all end a line. Token counts for the
search are exact, but a piece whose per-line counts (one tokenizer pass over the file) add up to far
more than the limit is refused without counting it, so chunking is linear in the file's size.

Chunk metadata: ``language``, ``kind`` (function/class/method/... or ``statements`` for code between
units, ``file`` without a grammar), ``name``, ``parent`` (enclosing unit), ``start_line``/``end_line``
(1-based, inclusive), ``part`` (index within a partitioned unit) and ``split``, how the chunk's end
was chosen: ``unit`` (end of the unit or gap), ``llm``, ``statement``, ``fixed`` or ``tokens`` (fallbacks).
The cutting is in :mod:`ragpress.chunkers.code.partition`, the grammars in :mod:`.grammar`.

Batching across files: each file's chunking is a generator that yields its next partition prompt
(the reply decides where the next one starts), and :meth:`CodeChunker.chunk_batch` advances all
files in lockstep, so each round's prompts of every file go to the LLM in one :meth:`ask_llm` call
(one length-sorted ``chat_batch``); the chunks equal those of each file alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath
from typing import ClassVar

from ragpress.chunkers.base import Chunker
from ragpress.chunkers.code.grammar import EXTENSIONS, load_parser
from ragpress.chunkers.code.partition import Asks, CodeFile
from ragpress.core.loaders import load_causal_lm
from ragpress.core.lockstep import run_lockstep
from ragpress.core.prompt import user_turns
from ragpress.core.settings import guarded
from ragpress.core.types import Chunk, Document


@dataclasses.dataclass
class CodeChunker(Chunker):
    """Settings: ``language`` ("" = ``document.metadata["language"]`` or the suffix of
    ``metadata["path"]``), ``max_tokens`` per chunk (paper: 512-4096), ``model``: the LLM that
    partitions, ``tokenizer`` that counts, ``grammars`` mapping a language to a ``"module[:function]"``
    grammar."""

    method: ClassVar[str] = "code"
    language: str = ""
    max_tokens: int = 1024
    model: str = "smollm2-135m"
    tokenizer: str = "smollm2-135m"
    pack: bool = True
    grammars: dict[str, str] = guarded(dict, "code")  # a pipeline file may not set it (ragpress.core.settings)

    def __post_init__(self):
        if not isinstance(self.max_tokens, int) or self.max_tokens < 8:
            raise ValueError(f"max_tokens must be an int of at least 8, got {self.max_tokens!r}.")

    def ask_llm(self, prompts: list[str]) -> list[str]:
        """The LLM's reply to each partition prompt (greedy), all of them in one batched call."""
        return load_causal_lm(self.model).chat_batch(user_turns(prompts), max_new_tokens=64, desc="LLM prompts")

    def language_of(self, document: Document) -> str:
        language = self.language or document.metadata.get("language", "")
        if not language and document.metadata.get("path"):
            language = EXTENSIONS.get(PurePath(str(document.metadata["path"])).suffix.lower(), "")
        if not language:
            raise ValueError(
                f"Unknown language for document {document.id!r}: set CodeChunker(language=...) or put "
                "'language' or 'path' in the document's metadata."
            )
        return language.lower().replace("-", "_").replace("c++", "cpp").replace("c#", "csharp")

    def chunk(self, document: Document) -> list[Chunk]:
        return self.chunk_batch([document])[0]

    def chunk_batch(self, documents: list[Document]) -> list[list[Chunk]]:
        """Every file's chunks, the files advanced in lockstep: one :meth:`ask_llm` call per round
        answers the pending partition prompt of every file, so the LLM is called as many times as
        the file that needs most rounds, not once per prompt."""
        return run_lockstep([self.chunk_steps(doc) for doc in documents], self.ask_llm)

    def chunk_steps(self, document: Document) -> Asks[list[Chunk]]:
        """One file's chunking, yielding its partition prompts and receiving the replies."""
        language = self.language_of(document)
        job = CodeFile(self, document, language)
        parser = load_parser(language, self.grammars.get(language, ""))
        if parser is None:
            job.depth = {r: 0 if line[:1].strip() else 1 for r, line in enumerate(job.lines) if line.strip() and (r == 0 or line[:1].strip() or not job.lines[r - 1].strip())}
            yield from job.add(0, len(job.lines), "file", "", "")
        else:
            tree = parser.parse(job.text.encode("utf-8", "surrogatepass"))
            job.index_depths(tree.root_node)
            yield from job.units(tree.root_node, 0, len(job.lines), "")
        return (yield from job.finish())
