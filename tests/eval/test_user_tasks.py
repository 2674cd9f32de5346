"""User tasks from JSON lines and the errors that name the bad line."""

import json

import pytest

from ragpress.eval import load_jsonl


def write(tmp_path, *lines):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_become_examples_named_after_the_file(tmp_path):
    good = json.dumps({"context": "Bern is the capital.", "question": "Capital?", "answers": ["Bern"]})
    path = write(tmp_path, good, "", json.dumps({"id": "b", "context": "c", "question": "q", "answers": ["x", "y"], "metadata": {"k": 1}}))
    first, second = load_jsonl(path)
    assert (first.id, first.task, first.answers, first.context) == ("mine/1", "mine", ("Bern",), "Bern is the capital.")
    assert (second.id, second.answers, dict(second.metadata)) == ("b", ("x", "y"), {"k": 1})


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2: not valid JSON"),
    ("[1, 2]", "line 2: expected a JSON object"),
    (json.dumps({"context": "c", "answers": ["a"]}), "line 2: missing question"),
    (json.dumps({"context": 3, "question": "q", "answers": ["a"]}), "line 2: 'context' must be a string"),
    (json.dumps({"context": "c", "question": "q", "answers": "a"}), "line 2: 'answers' must be a non-empty list"),
    (json.dumps({"context": "c", "question": "q", "answers": []}), "line 2: 'answers' must be a non-empty list"),
    (json.dumps({"context": "c", "question": "q", "answers": ["a"], "metadata": [1]}), "line 2: 'metadata' must be a JSON object"),
])
def test_a_bad_line_is_named_with_what_to_fix(tmp_path, line, message):
    good = json.dumps({"context": "c", "question": "q", "answers": ["a"]})
    with pytest.raises(ValueError, match=message):
        load_jsonl(write(tmp_path, good, line))
