from ragpress.core import Chunk, Context
from ragpress.demo.show import KEPT_ANSI, highlight, kept_spans, passages, side_by_side, tokens_line

TEXT = "Intro line. The with statement calls __exit__. It ends the block. Other text."
CHUNK = Chunk(doc_id="with", start=100, end=100 + len(TEXT), text=TEXT)
OTHER = Chunk(doc_id="for", start=0, end=9, text="For loops")


def piece(doc_id, start, end, text=""):
    return Chunk(doc_id=doc_id, start=start, end=end, text=text or "x" * (end - start))


def context(*pieces):
    return Context(query="q", pieces=tuple(pieces), tokens_before=40, tokens_after=10)


def test_kept_spans_are_chunk_offsets_merged_and_limited_to_the_chunk():
    a = TEXT.index("The with")
    b = TEXT.index(" It ends")
    kept = context(piece("with", 100 + a, 100 + b), piece("with", 100 + b, 100 + b + 5), piece("for", 100 + a, 100 + b),
                   piece("with", 90, 105))
    assert kept_spans(CHUNK, kept) == [(0, 5), (a, b + 5)]
    assert kept_spans(OTHER, context(piece("with", 0, 9))) == []


def test_highlight_marks_kept_text_in_brackets_or_colour():
    a, b = TEXT.index("The with"), TEXT.index(" It ends")
    kept = context(piece("with", 100 + a, 100 + b))
    assert highlight(CHUNK, kept, colour=False) == f"Intro line. [[{TEXT[a:b]}]] It ends the block. Other text."
    coloured = highlight(CHUNK, kept, colour=True)
    assert f"{KEPT_ANSI}{TEXT[a:b]}\033[0m" in coloured and "\033[2mIntro line. \033[0m" in coloured and "[[" not in coloured


def test_passages_show_kept_chunks_whole_and_name_the_dropped_ones():
    kept = context(piece("with", 100, 111))
    shown = passages([OTHER, CHUNK], kept, colour=False)
    assert shown.splitlines() == [f"--- with[100:{CHUNK.end}]", f"[[Intro line.]]{TEXT[11:]}", "--- dropped whole: for[0:9]"]


def test_tokens_line_says_retrieved_kept_saved_and_ratio():
    assert tokens_line(context()) == "Tokens: 40 retrieved, 10 kept, 30 saved (4.0x)."


def test_side_by_side_wraps_each_column_to_half_the_width():
    shown = side_by_side(("LEFT head", "short answer"), ("RIGHT head", "a much longer answer " * 6), width=60).splitlines()
    assert shown[0].startswith("LEFT head") and shown[0].endswith("| RIGHT head")
    assert all(len(line) <= 60 for line in shown) and len(shown) > 3
    assert all(line.index("|") == shown[0].index("|") for line in shown)
    assert shown[1].startswith("-" * 28 + " | ") and "a much" in shown[2] and "short answer" in shown[2]
