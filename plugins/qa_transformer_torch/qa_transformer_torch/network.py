"""The networks. ``architecture=plain`` (:class:`QATransformer`): token embedding + positions
(+ question-match and convolutional position features) -> ``nn.TransformerEncoder`` with a
padding mask -> pooling -> one logit. ``architecture=memory`` (:class:`SentenceMemory`): each
sentence encoded on its own, then question-conditioned hops across sentences (its docstring).

Four choices make the difference between a model that learns the generated stories within the
core's default 5 epochs and one that sits at 50% memorising them (ablations in README.md):

* **positions count back from the question.** Rows are right-padded and the core truncates the
  *start* of long stories, so the question always ends the row. Indexing the position table by
  the distance to the last real token gives the question words fixed positions and makes
  "how recent is this sentence" one learned vector per distance.
* **question match** (the exact-match feature of DrQA-style readers): each story token gets a
  learned vector saying which of the question's last words it repeats (counted from the end), so
  the mentions of the asked actor and place stand out before any attention is learned.
* **a convolutional position encoding** (as in wav2vec 2.0): a 1-D convolution over the
  embeddings lets every token see its neighbours, so a place "knows" the actor and the verb of
  its own sentence from the first step; attention is left with the long-range part.
* **a distance bias** (ALiBi-like): attention logits lose ``distance_bias`` per token of distance,
  a prior toward a token's own sentence and toward recent sentences.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from qa_core import ModelSpec
from qa_core.data.tokenizer import SEP

#: The question words the match feature tells apart, counted from the end of the row; repeats of
#: words further back share the last id. Eight covers "Is the apple in the kitchen ?" and SEP.
MATCH_WORDS = 8

#: Within-sentence positions the memory network tells apart; later words share the last one.
SENTENCE_POSITIONS = 64


#: The tokens that end a sentence: the core counts ``support`` indices by the same three.
SENTENCE_ENDS = (".", "!", "?")


def sentence_end_ids(spec: ModelSpec) -> tuple[int, ...]:
    """The ids of the sentence ends the vocabulary has (none: the story is one sentence)."""
    return tuple(spec.vocab.index(end) for end in SENTENCE_ENDS if end in spec.vocab)


#: The words that join a sentence's events into clauses ("X went to A, took B and ran to C").
CLAUSE_JOINS = (",", "and")


def clause_join_ids(spec: ModelSpec) -> tuple[int, ...]:
    return tuple(spec.vocab.index(word) for word in CLAUSE_JOINS if word in spec.vocab)


def support_loss(reads: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Attention supervision (strongly supervised memory networks), order-free.

    ``reads``: [b, hops, S] each hop's weight on each sentence (sums <= 1); ``support``: [b, k]
    supporting sentence indices, -1 padded. Support is a set and the hops' order along the chain
    is not given, so two terms: every hop's mass should fall on support sentences
    (``-log sum_{s in support} w_k[s]``), and every support sentence should be read by some hop
    (``-log(1 - prod_k (1 - w_k[s]))``). Rows without support add nothing; the mean is over the
    rows that have some. A scalar.
    """
    b, _, s = reads.shape
    index = support.long()
    valid = (index >= 0) & (index < s)
    mask = torch.zeros(b, s + 1, device=reads.device, dtype=reads.dtype)
    mask.scatter_(1, torch.where(valid, index, s), 1.0)  # invalid ones land in a dropped column
    mask = mask[:, :s]
    has = mask.sum(1) > 0
    eps = 1e-6
    on_support = -torch.log((reads * mask.unsqueeze(1)).sum(-1).clamp(min=eps, max=1.0)).mean(1)  # [b]
    missed = torch.log1p(-reads.clamp(max=1.0 - eps)).sum(1)  # [b, S]: log prod_k (1 - w_k)
    found = -torch.log((-torch.expm1(missed)).clamp(min=eps))
    covered = (found * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    per_row = (on_support + covered) * has
    return per_row.sum() / has.sum().clamp(min=1)


class QATransformer(nn.Module):
    """Reads ``story SEP question`` token ids and returns the logit of "yes".

    ``forward(tokens, lengths)`` builds the padding mask from the lengths the core provides, so
    attention never looks at padding and pooling reads real tokens only. A batch may be narrower
    than ``max_len`` (the caller cuts trailing padding): nothing depends on the width.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        pooling: str = "last",
        question_match: bool = True,
        conv_kernel: int = 9,
        distance_bias: float = 0.05,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.distance_bias = distance_bias
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        # Row 0: a story word the question does not repeat; 1..MATCH_WORDS: a story word equal to
        # that question word (counted from the end); the last row: SEP and the question itself.
        self.match = nn.Embedding(MATCH_WORDS + 2, d_model) if question_match else None
        self.conv = nn.Conv1d(d_model, d_model, conv_kernel, padding=conv_kernel // 2) if conv_kernel else None
        # The CLS vector is prepended and takes no position: max_len stays the real tokens a row holds.
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            ff_dim,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: stable at the learning rates a small model wants
            # No biases: modern practice, a little faster, and it keeps torch's inference fast
            # path (which mishandles float attention masks, seen with torch 2.13) out of the way.
            bias=False,
        )
        # Nested tensors need post-norm layers; the padding mask does the same job here.
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)
        # 0..max_len-1, for masks and distances; not a weight, so not in the state_dict.
        self.register_buffer("steps", torch.arange(max_len), persistent=False)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        # Unit scale like the scaled token embeddings: positions matter from the first step.
        nn.init.normal_(self.position.weight, std=1.0)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row (>= 1). Returns logits [b]."""
        steps = self.steps[: tokens.shape[1]]
        padding = steps >= lengths.unsqueeze(1)  # [b, t], True at padding
        from_end = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)  # 0 at the row's last token
        x = self.embed(tokens) * self.scale + self.position(from_end)
        if self.match is not None:
            x = x + self.match(self.match_ids(tokens, lengths, padding))
        if self.conv is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0.0)  # zeros, as the conv's own padding
            x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), dim=1)
            padding = torch.cat((padding.new_zeros(x.shape[0], 1), padding), dim=1)
        if self.distance_bias:
            # Float masks on both sides: torch merges them into one additive mask per head.
            keys = torch.zeros(padding.shape, dtype=x.dtype, device=x.device).masked_fill(padding, float("-inf"))
            x = self.encoder(self.dropout(x), mask=self.distance_mask(x.shape[1], x), src_key_padding_mask=keys)
        else:
            x = self.encoder(self.dropout(x), src_key_padding_mask=padding)
        if self.pooling == "last":  # the token that ends the question
            pooled = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
        elif self.pooling == "cls":
            pooled = x[:, 0]
        else:
            keep = (~padding).unsqueeze(-1).to(x.dtype)
            pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(pooled).squeeze(-1)

    def distance_mask(self, width: int, like: torch.Tensor) -> torch.Tensor:
        """Additive [t, t] attention bias ``-distance_bias * |i - j|`` (ALiBi-like, every head).

        A prior, not a limit: nearby tokens (a sentence's own words) and recent sentences start
        out favoured, which is what binding an actor to a place and finding its latest move
        need; content scores can still reach far back.
        """
        steps = torch.arange(width, device=like.device, dtype=like.dtype)
        mask = (steps.unsqueeze(0) - steps.unsqueeze(1)).abs_().mul_(-self.distance_bias)
        if self.cls is not None:  # the CLS vector sits outside the text: no distance to it
            mask[0, :] = 0.0
            mask[:, 0] = 0.0
        return mask

    @staticmethod
    def match_ids(tokens: torch.Tensor, lengths: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """[b, t] ids: which of the question's last MATCH_WORDS tokens each token repeats.

        The question is everything after the last SEP. Its last words are gathered into a
        [b, MATCH_WORDS] table (one gather), compared with every token ([b, t, MATCH_WORDS]) and
        the nearest-to-the-end match wins. SEP and the question get MATCH_WORDS + 1, padding and
        unrepeated story words 0.
        """
        back = torch.arange(MATCH_WORDS, device=tokens.device)
        index = (lengths.unsqueeze(1) - 1 - back).clamp(min=0)  # [b, K] positions of the last words
        last_words = tokens.gather(1, index)
        # Only real question words count: after the row's last SEP, inside the row.
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        sep_at = torch.where(tokens == SEP, positions, -1).amax(1, keepdim=True)  # -1: no question
        valid = (index > sep_at) & (back < lengths.unsqueeze(1)) & (sep_at >= 0)
        same = (tokens.unsqueeze(2) == last_words.unsqueeze(1)) & valid.unsqueeze(1)  # [b, t, K]
        # argmax finds the first True: the word nearest to the end; +1 keeps 0 for "none".
        ids = torch.where(same.any(-1), same.to(torch.uint8).argmax(-1) + 1, 0)
        # The question's own words get one id of their own: a story's "Mary" must not look
        # like the question's "Mary" (positions already tell the question words apart).
        in_question = (positions >= sep_at) & (sep_at >= 0)
        ids = torch.where(in_question, MATCH_WORDS + 1, ids)
        return ids.masked_fill(padding, 0)


class SentenceMemory(nn.Module):
    """``architecture=memory``: a sentence-level reader that follows a chain of hops.

    1. **Sentences.** The row ``story SEP question`` is cut at the "." token into sentences and
       the question; each becomes one row of a [b, S, L] grid (one scatter, no Python loop per
       example) and a small shared Transformer encoder reads every sentence on its own, with
       within-sentence positions and the question-match feature, so a token's state says who
       did what to it in its own sentence ("watch" in "Walter gave the watch to Bernhard").
    2. **Hops.** Each hop asks one question of every sentence at once: per head, attention over
       the sentence's tokens plus a learned *null* slot; ``1 - p(null)`` is how much the sentence
       answers the query. A last-write-wins scan then keeps the **most recent** answering
       sentence (its read weighted by ``g_s * prod_{s' > s} (1 - g_s')``, a reverse cumulative
       sum in log space: vectorised over sentences). The result updates the query (residual +
       LayerNorm), so hop 1 can find the last holder of the object, hop 2 the holder's container
       or carrier, hop 3 the carrier's last move: the 1, 2 and 3 hops of the generated categories.
    3. **Answer.** An MLP over the final query and the question vector gives the logit.

    Cost is linear in the story (one pass of a short encoder over sentences, ``hops`` cheap reads),
    where the plain encoder's attention is quadratic in the row.
    """

    def __init__(
        self,
        vocab_size: int,
        end_ids: tuple[int, ...],
        sep_id: int,
        d_model: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        hops: int,
        question_match: bool = True,
        pad_id: int = 0,
        clause_ids: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.sep_id, self.pad_id = sep_id, pad_id
        # Sentence ends as a buffer (moves with the module; not a weight, not in the state_dict).
        self.register_buffer("end_ids", torch.tensor(end_ids or (-1,), dtype=torch.long), persistent=False)
        # Clause ends: sentence ends plus "," and "and" (what joins a sentence's events).
        self.register_buffer("clause_ids", torch.tensor((*end_ids, *clause_ids) or (-1,), dtype=torch.long), persistent=False)
        self.heads, self.hops = heads, hops
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.word_position = nn.Embedding(SENTENCE_POSITIONS, d_model)
        self.match = nn.Embedding(MATCH_WORDS + 2, d_model) if question_match else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True, bias=False
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.start = nn.Linear(d_model, d_model)  # question vector -> first query
        self.query = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.keys = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.values = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.null = nn.Parameter(torch.zeros(hops, heads))  # the "this sentence says nothing" logit
        self.update = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(hops))
        self.head = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, 1))
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, with_reads: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row. Returns logits [b],
        and with ``with_reads`` also each hop's weight on each sentence, [b, hops, S] (mean over
        heads; what :func:`support_loss` supervises)."""
        cut = self.segment(tokens, lengths)
        grid = cut.grid
        b, s, width = grid.shape
        states = self.encode(grid.view(b * s, width), cut.match.view(b * s, width)).view(b, s, width, -1)
        q_states = self.encode(cut.question, cut.question_match)
        q_real = (cut.question != self.pad_id).unsqueeze(-1).to(q_states.dtype)
        q = (q_states * q_real).sum(1) / q_real.sum(1).clamp(min=1.0)
        # The reads scan clauses: each token's state (read in its whole sentence, so an elided
        # subject is known) moves to its clause's row; recency then orders clauses exactly.
        rows, sentence, within, clause, within_clause = cut.where
        slots = states.new_zeros(b, cut.clauses, cut.clause_width, states.shape[-1])
        slots[rows, clause, within_clause] = states[rows, sentence, within]
        token_pad = torch.ones(slots.shape[:3], dtype=torch.bool, device=slots.device)
        token_pad[rows, clause, within_clause] = False
        unit_real = ~token_pad.all(-1)  # [b, C]
        u = self.start(q)
        reads = []
        for hop in range(self.hops):
            read, weights = self.read(hop, u, slots, token_pad, unit_real)
            u = self.update[hop](u + read)
            reads.append(weights.mean(-1))
        logits = self.head(torch.cat((u, q), dim=-1)).squeeze(-1)
        if not with_reads:
            return logits
        # Clause weights summed per sentence: support names sentences.
        per_clause = torch.stack(reads, 1)  # [b, hops, C]
        per_sentence = per_clause.new_zeros(b, self.hops, s)
        per_sentence.scatter_add_(2, cut.clause_sentence.unsqueeze(1).expand(-1, self.hops, -1), per_clause)
        return logits, per_sentence

    def encode(self, rows: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
        """The shared sentence encoder over [n, L] token rows (a row of padding stays harmless)."""
        steps = torch.arange(rows.shape[1], device=rows.device).clamp(max=SENTENCE_POSITIONS - 1)
        x = self.embed(rows) * self.scale + self.word_position(steps)
        if self.match is not None:
            x = x + self.match(match)
        padding = rows == self.pad_id
        padding[:, 0] = False  # an all-padding row would make attention NaN; its output is unused
        return self.encoder(self.dropout(x), src_key_padding_mask=padding)

    def read(self, hop: int, u: torch.Tensor, states: torch.Tensor, token_pad: torch.Tensor, sentence_real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop: what the most recent sentence that answers query ``u`` says about it ([b, d]),
        and each sentence's weight in that read per head ([b, S, H])."""
        b, s, width, d = states.shape
        h, dh = self.heads, d // self.heads
        query = self.query[hop](u).view(b, 1, 1, h, dh)
        keys = self.keys[hop](states).view(b, s, width, h, dh)
        values = self.values[hop](states).view(b, s, width, h, dh)
        scores = (keys * query).sum(-1) / math.sqrt(dh)  # [b, S, L, H]
        scores = scores.masked_fill(token_pad.unsqueeze(-1), float("-inf"))
        null = self.null[hop].view(1, 1, 1, h).expand(b, s, 1, h)
        weights = torch.cat((scores, null), dim=2).softmax(dim=2)  # [b, S, L+1, H]
        answers = 1.0 - weights[:, :, -1]  # [b, S, H]: how much each sentence answers
        answers = answers * sentence_real.unsqueeze(-1)
        reads = torch.einsum("bslh,bslhd->bshd", weights[:, :, :-1], values) / answers.clamp(min=1e-6).unsqueeze(-1)
        recent = self.last_write_wins(answers)
        return (recent.unsqueeze(-1) * reads).sum(1).reshape(b, d), recent

    @staticmethod
    def last_write_wins(answers: torch.Tensor) -> torch.Tensor:
        """[b, S, ...] answer strengths in story order -> the weight of each sentence's read:
        ``g_s * prod_{s' > s} (1 - g_s')``, the chance it answers and no later sentence does."""
        keep = torch.log1p(-answers.clamp(max=1.0 - 1e-6))
        later = keep.flip(1).cumsum(1).flip(1) - keep  # sum over s' > s
        return answers * later.exp()

    def segment(self, tokens: torch.Tensor, lengths: torch.Tensor) -> "Segments":
        """Cut rows into a [b, S, L] sentence grid and a [b, Q] question (ids and match ids), and
        say where every story token goes in the clause grid (clauses end at ",", "and" and the
        sentence ends)."""
        b, t = tokens.shape
        steps = torch.arange(t, device=tokens.device)
        real = steps < lengths.unsqueeze(1)
        sep_at = torch.where((tokens == self.sep_id) & real, steps, -1).amax(1, keepdim=True)
        story = real & (steps < sep_at)
        in_question = real & (steps > sep_at)
        match = QATransformer.match_ids(tokens, lengths, ~real)
        sentence, within = self._runs(torch.isin(tokens, self.end_ids), steps)
        clause, within_clause = self._runs(torch.isin(tokens, self.clause_ids), steps)
        n_sentences = int(sentence.masked_fill(~story, 0).amax()) + 1
        width = int(within.masked_fill(~story, 0).amax()) + 1
        grid = tokens.new_full((b, n_sentences, width), self.pad_id)
        grid_match = torch.zeros_like(grid)
        rows = torch.arange(b, device=tokens.device).unsqueeze(1).expand(b, t)
        where = (rows[story], sentence[story], within[story])
        grid[where] = tokens[story]
        grid_match[where] = match[story]
        n_clauses = int(clause.masked_fill(~story, 0).amax()) + 1
        clause_sentence = tokens.new_zeros(b, n_clauses)  # the sentence each clause belongs to
        clause_sentence[rows[story], clause[story]] = sentence[story]
        q_pos = (steps - sep_at - 1).clamp(min=0)
        q_width = max(int(q_pos.masked_fill(~in_question, 0).amax()) + 1, 1)
        question = tokens.new_full((b, q_width), self.pad_id)
        question_match = torch.zeros_like(question)
        question[rows[in_question], q_pos[in_question]] = tokens[in_question]
        question_match[rows[in_question], q_pos[in_question]] = match[in_question]
        return Segments(
            grid, grid_match, question, question_match,
            where=(*where, clause[story], within_clause[story]),
            clauses=n_clauses,
            clause_width=int(within_clause.masked_fill(~story, 0).amax()) + 1,
            clause_sentence=clause_sentence,
        )

    @staticmethod
    def _runs(ends: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[b, t] True at tokens that close a unit -> each token's unit index and its position
        in the unit (a unit starts after each closing token)."""
        after = torch.zeros_like(ends)
        after[:, 1:] = ends[:, :-1]
        index = after.long().cumsum(1)
        starts = torch.where(after | (steps == 0), steps, 0).cummax(1).values
        return index, steps - starts


class Segments(NamedTuple):
    """:meth:`SentenceMemory.segment`'s cut of a batch."""

    grid: torch.Tensor  # [b, S, L] sentence token ids
    match: torch.Tensor  # [b, S, L] their question-match ids
    question: torch.Tensor  # [b, Q]
    question_match: torch.Tensor  # [b, Q]
    #: Per story token: (row, sentence, position in it, clause, position in the clause).
    where: tuple[torch.Tensor, ...]
    clauses: int
    clause_width: int
    clause_sentence: torch.Tensor  # long [b, C]


def make_network(spec: ModelSpec) -> nn.Module:
    """The network ``spec`` describes (shapes from the data, the rest from ``spec.params``)."""
    p = spec.params
    if p.get("architecture", "plain") == "memory":
        return SentenceMemory(
            vocab_size=spec.vocab_size,
            end_ids=sentence_end_ids(spec),
            clause_ids=clause_join_ids(spec),
            sep_id=spec.sep_id,
            d_model=p["d_model"],
            heads=p["heads"],
            layers=p["layers"],
            ff_dim=p["ff_dim"],
            dropout=p["dropout"],
            hops=p["hops"],
            question_match=p["question_match"],
            pad_id=spec.pad_id,
        )
    return QATransformer(
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        d_model=p["d_model"],
        heads=p["heads"],
        layers=p["layers"],
        ff_dim=p["ff_dim"],
        dropout=p["dropout"],
        pooling=p["pooling"],
        question_match=p["question_match"],
        conv_kernel=p["conv_kernel"],
        distance_bias=p["distance_bias"],
        pad_id=spec.pad_id,
    )
