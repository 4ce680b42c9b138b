"""The data half of qa-core: records, readers, the story generator and the tokenizer."""

from .nouns import count_nouns
from .records import Example, read_jsonl, write_jsonl

__all__ = ["Example", "count_nouns", "read_jsonl", "write_jsonl"]
