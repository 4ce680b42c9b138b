"""5. Story generation (stories/s) and encoding (records/s, peak memory for 1M records).

Generation is timed through ``generate_splits`` exactly as ``qa data generate`` calls it.
Encoding is timed through ``qa_core.data.tokenizer.encode`` on generated records repeated up to
the wanted count (the encoder's work per record does not depend on repeats). Peak memory is
measured in a child process (its peak resident memory while encoding, ``VmHWM`` reset just
before, minus its resident memory then), so the timing run is not slowed by tracing allocations.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .common import Result, best_of, generated

_MEMORY_PROBE = r"""
import json, resource, sys
from qa_core.data.generator import generate_splits
from qa_core.data.tokenizer import Vocabulary, encode

def kib(field):
    # Linux: this process' own peak (VmHWM) and current (VmRSS) resident memory. ru_maxrss is no
    # good here: after exec it starts at the *parent's* peak (the benchmark process holding 10M
    # predictions read as 925 MB "before" and hid the encoder's growth entirely).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

n, max_len = int(sys.argv[1]), int(sys.argv[2])
base = generate_splits({"train": 4500}, seed=0)["train"]
records = (base * (n // len(base) + 1))[:n]
vocab = Vocabulary.build(base)
try:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current RSS: the peak from here on is the encoder's
    before, peak = kib("VmRSS"), lambda: kib("VmHWM")
    source = "VmHWM"
except OSError:
    before, peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = "ru_maxrss"
split, _ = encode(records, vocab, max_len, "train")
after = peak()
print(json.dumps({"before_kib": before, "after_kib": after, "source": source, "output_bytes": sum(a.nbytes for a in (split.tokens, split.lengths, split.labels, split.categories, split.noun_counts))}))
"""

def run(quick: bool) -> Result:
    from qa_core.data.generator import generate_splits
    from qa_core.data.tokenizer import Vocabulary, encode

    result = Result("data_pipeline", "5. Story generation and encoding")
    stories = 1800 if quick else 9000
    seconds, times = best_of(lambda: generate_splits({"train": stories}, seed=7), repeats=3 if quick else 5, warmup=0)
    result.figures["generate_stories_per_s"] = stories / seconds
    result.details["generate"] = {"stories": stories, "seconds": times}

    base = generated(4500, 900)["train"]
    vocab = Vocabulary.build(base)
    n = 100_000 if quick else 1_000_000
    records = (base * (n // len(base) + 1))[:n]
    max_len = 96
    seconds, times = best_of(lambda: encode(records, vocab, max_len, "train"), repeats=3 if quick else 3, warmup=0)
    result.figures["encode_records_per_s"] = n / seconds
    result.details["encode"] = {"records": n, "max_len": max_len, "seconds": times}

    memory_n = 1_000_000 if not quick else 200_000
    probe = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(memory_n), str(max_len)], capture_output=True, text=True, timeout=900)
    if probe.returncode == 0:
        info = json.loads(probe.stdout.strip().splitlines()[-1])
        extra_mib = (info["after_kib"] - info["before_kib"]) / 1024
        result.figures[f"encode_peak_extra_mib_{memory_n // 1000}k"] = extra_mib
        # what the encoder needs beyond the arrays it returns (its chunk of text and token strings)
        result.figures[f"encode_working_mib_{memory_n // 1000}k"] = extra_mib - info["output_bytes"] / 2**20
        result.details["encode_memory"] = {**info, "records": memory_n}
        result.notes.append(
            f"peak memory: growth of the process' maximum RSS while encoding {memory_n:,} records; the "
            f"output arrays themselves are {info['output_bytes'] / 2**20:.0f} MiB"
        )
    else:
        result.notes.append(f"memory probe failed: {probe.stderr.strip().splitlines()[-1:]}")
    return result
