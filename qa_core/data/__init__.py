"""The data half of qa-core: records, readers, the story generator and the tokenizer."""

from .babi import read_babi
from .loading import read_dir, read_examples
from .nouns import count_nouns
from .records import Example, read_jsonl, write_jsonl
from .splits import stratified_split

__all__ = ["Example", "count_nouns", "read_babi", "read_dir", "read_examples", "read_jsonl", "stratified_split", "write_jsonl"]
